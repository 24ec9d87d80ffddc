import type { ChildProcess } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunbookResult } from '../src/shared/types.js';
import { runbook } from './support/cli.js';
import { sigkill, startChildWorker } from './support/child-worker.js';
import { allMeta, differences, pairTarget } from './support/dual-write.js';
import { Harness } from './support/harness.js';
import { deleteSchedules } from './support/schedules.js';

/**
 * `runbook schedule create dual-write-check`: a Temporal Schedule per dual-write target on the suite's real
 * server; its runs happen on a worker process of its own (`npm run worker`'s entry), whose Prometheus endpoint
 * must show the inconsistency gauge the scheduled check set — and 0 once the pair is consistent again.
 */
const h = new Harness();
const pool = new pg.Pool({ connectionString: h.databaseUrl });
const children: ChildProcess[] = [];
const created: string[] = [];
beforeAll(() => h.start({ worker: false }));
afterAll(async () => {
  await deleteSchedules(h.client, created);
  for (const c of children.splice(0)) await sigkill(c);
  await h.close();
  await pool.end();
});

const cli = (...args: string[]) => runbook(['schedule', ...args], h.env());

/** The value of the gauge's series for the environment and target (undefined when the series is absent). */
function gauge(metrics: string, environment: string, target: string): number | undefined {
  for (const line of metrics.split('\n'))
    if (
      line.startsWith('dual_write_inconsistency_detected{') &&
      line.includes(`environment="${environment}"`) &&
      line.includes(`target="${target}"`)
    )
      return Number(line.slice(line.lastIndexOf(' ') + 1));
  return undefined;
}

describe('runbook schedule: the dual-write consistency check', () => {
  it('creates a schedule per target; a triggered run detects only, and the worker exports the gauge (back to 0 when consistent)', async () => {
    const t = await pairTarget(h, pool, 'postgres-objectstore', {
      objects: 800,
      drift: { content_mismatch: 3, missing_in_a: 2 },
      newer: 'a',
    });
    const worker = await startChildWorker(h, children);
    const scrape = async () => (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text();
    const id = `dual-write-check--${t.envName}--objects`;
    const made = await cli('create', 'dual-write-check', '--env', t.envName, '--target', 'objects');
    created.push(id);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toContain(`created schedule ${id}: dual-write consistency check (detection only)`);
    expect(made.stdout).toContain('cron "*/15 * * * *" (UTC); overlap SKIP');
    const d = await h.client.schedule.getHandle(id).describe();
    expect(d.action).toMatchObject({
      type: 'startWorkflow',
      workflowType: 'dualWriteCheck',
      args: [{ environment: t.envName, target: 'objects', requester: `schedule:${id}` }],
    });

    const bBefore = await allMeta(t.b);
    const aBefore = await allMeta(t.a);
    const run = async (): Promise<RunbookResult> => {
      const before = (await h.client.schedule.getHandle(id).describe()).info.recentActions.length;
      const trig = await cli('trigger', id);
      expect(trig.code, trig.stderr).toBe(0);
      let actions = (await h.client.schedule.getHandle(id).describe()).info.recentActions;
      while (actions.length === before) {
        await new Promise((r) => setTimeout(r, 200));
        actions = (await h.client.schedule.getHandle(id).describe()).info.recentActions;
      }
      const wf = actions.at(-1)!.action.workflow;
      return (await h.client.workflow.getHandle(wf.workflowId, wf.firstExecutionRunId).result()) as RunbookResult;
    };
    const first = await run();
    expect(first).toMatchObject({ outcome: 'succeeded', runbook: 'dual-write-check', results: { inconsistent: 5 } });
    expect(first.planHash).toBeTruthy();
    expect(first.approval.approvedBy).toEqual([]);
    // detection only: both stores as they were
    expect(await allMeta(t.a)).toEqual(aBefore);
    expect(await allMeta(t.b)).toEqual(bBefore);
    const metrics = await scrape();
    expect(gauge(metrics, t.envName, 'objects')).toBe(5);
    // the runbook metrics the alert rules and the dashboard use (monitoring/)
    expect(metrics).toMatch(/^runbook_runs_started\{[^}]*runbook="dual-write-check"/m);
    expect(metrics).toMatch(/^runbook_runs_finished\{[^}]*outcome="succeeded"[^}]*runbook="dual-write-check"/m);
    expect(metrics).toMatch(/^runbook_step_duration_bucket\{/m);

    // repaired by hand: the next scheduled check sets the gauge back to 0
    const inA = await allMeta(t.a);
    await t.b.put(await t.a.get(inA));
    const keysA = new Set(inA.map((m) => `${m.objectId}@${m.version}`));
    await t.b.delete((await allMeta(t.b)).filter((m) => !keysA.has(`${m.objectId}@${m.version}`)));
    expect(await differences(t)).toBe(0);
    const second = await run();
    expect(second).toMatchObject({ outcome: 'succeeded', results: { inconsistent: 0, severity: 'none' } });
    expect(gauge(await scrape(), t.envName, 'objects')).toBe(0);

    // once, by hand, as the README shows it
    const once = await runbook(
      ['start', 'dual-write-check', '--env', t.envName, '--target', 'objects', '--wait', '--requester', 'rita'],
      h.env(),
    );
    expect(once.code, once.stderr).toBe(0);
    expect(once.stdout).toContain('succeeded');
  });

  it('refuses a schedule for a target without a dualWrite section, creating nothing', async () => {
    const t = await h.demoTarget();
    const r = await cli('create', 'dual-write-check', '--env', t.envName, '--target', 'web');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/dualWrite/);
    await expect(h.client.schedule.getHandle(`dual-write-check--${t.envName}--web`).describe()).rejects.toThrow();
  });
});
