import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import { approveSignal } from '../src/shared/messages.js';
import type { RunbookResult } from '../src/shared/types.js';
import { Harness } from './support/harness.js';
import { sigkill, startChildWorker as startWorker } from './support/child-worker.js';
import { saveHistory } from './support/histories.js';

/** Workers in child processes (`npm run worker`'s entry) that the tests SIGKILL. */
const h = new Harness();
const children: ChildProcess[] = [];
beforeAll(() => h.start({ worker: false }));
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await h.close();
});

const startChildWorker = (metricsPort = 0) => startWorker(h, children, metricsPort);

async function planHash(handle: WorkflowHandle): Promise<string> {
  return (await h.waitForApproval(handle)).planHash!;
}

describe('worker crash (SIGKILL) and resume', () => {
  it('killed during a running step: a new worker resumes and every side effect happens exactly once', async () => {
    const t = await h.demoTarget({ quietWindow: '4s' });
    const first = await startChildWorker();
    const handle = await h.startRun({ environment: t.envName });
    await handle.signal(approveSignal, { by: 'alice', planHash: await planHash(handle) });
    await h.waitFor(handle, (s) => s.currentStep === 'verify no dual writes');
    await sigkill(first.child);
    const second = await startChildWorker();
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect(result.steps.find((s) => s.name === 'verify no dual writes')!.attempts).toBe(2);
    expect(result.steps.find((s) => s.name === 'reload service')!.attempts).toBe(1);
    const stats = await t.stats();
    expect(stats.reloads).toBe(1);
    expect(stats.flagChanges).toBe(1);
    expect(readFileSync(t.envFile, 'utf8')).toBe(
      t.initialFlags.replace('TEAM_VNEXT_DUAL_WRITE_ENABLED=true', 'TEAM_VNEXT_DUAL_WRITE_ENABLED=false'),
    );
    const history = await handle.fetchHistory();
    const scheduled = history
      .events!.filter((e) => e.activityTaskScheduledEventAttributes)
      .map((e) => e.activityTaskScheduledEventAttributes!.activityType!.name);
    expect(scheduled.filter((n) => n === 'writeFlags')).toHaveLength(1);
    expect(scheduled.filter((n) => n === 'reloadService')).toHaveLength(1);
    const quiet = history.events!.find(
      (e) => e.activityTaskStartedEventAttributes && e.activityTaskStartedEventAttributes.attempt! > 1,
    );
    expect(quiet, 'the interrupted activity was retried on the new worker').toBeDefined();

    // the new worker's Prometheus endpoint has SDK metrics and the runbook metrics from the workflow
    const metrics = await (await fetch(`http://127.0.0.1:${second.metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/temporal_workflow_task_execution_latency|temporal_activity_execution_latency/);
    expect(metrics).toMatch(/runbook_runs_finished\{[^}]*outcome="succeeded"/);
    expect(metrics).toMatch(/runbook_step_duration_bucket\{[^}]*step="verify no dual writes"/);
    await sigkill(second.child);
    await saveHistory(h.client, handle.workflowId, 'worker-killed-during-step');
  });

  it('killed while waiting for approval: the approval is kept and a new worker completes the run', async () => {
    const t = await h.demoTarget({ quietWindow: '1s' });
    const first = await startChildWorker();
    const handle = await h.startRun({ environment: t.envName });
    const hash = await planHash(handle);
    await sigkill(first.child);
    await handle.signal(approveSignal, { by: 'bob', planHash: hash });
    await startChildWorker();
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect(result.approval.approvedBy).toEqual(['bob']);
    const stats = await t.stats();
    expect(stats.reloads).toBe(1);
    expect(stats.flagChanges).toBe(1);
  });

  it('a worker stops gracefully on SIGTERM', async () => {
    const { child } = await startChildWorker();
    const code = await new Promise<number | null>((resolve) => {
      child.once('exit', (c) => resolve(c));
      child.kill('SIGTERM');
    });
    expect(code).toBe(0);
  });
});
