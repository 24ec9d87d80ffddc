import { cpSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parse, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import type { CheckResult } from '../src/activities/dual-write/index.js';
import { loadEnvironment } from '../src/activities/environment.js';
import { sha256 } from '../src/activities/digest.js';
import type { RunbookResult } from '../src/shared/types.js';
import { allMeta, dualWriteSuite, differences, pairTarget, type PairTarget } from './support/dual-write.js';
import { saveHistory } from './support/histories.js';
import { startRunbook } from './support/sqlite.js';
import { join } from 'node:path';

/** dual-write-check through the real workflow on the suite's Temporal and Postgres: PG table ↔ object store. */
const { h, pool } = dualWriteSuite();

const envFile = (t: PairTarget) => join(h.environmentsDir, `${t.envName}.yaml`);
/** changes the environment file of `t` (the parsed YAML, in place) */
function editEnvironment(t: PairTarget, edit: (env: Record<string, any>) => void): void {
  const env = parse(readFileSync(envFile(t), 'utf8'));
  edit(env);
  writeFileSync(envFile(t), stringify(env));
}

async function check(t: PairTarget): Promise<RunbookResult & { detection: CheckResult }> {
  const handle = await startRunbook(h, 'dual-write-check', { environment: t.envName, target: 'objects' });
  const result = (await handle.result()) as RunbookResult;
  expect(result.outcome, result.error).toBe('succeeded');
  return { ...result, detection: result.extra!.detection as CheckResult, workflowId: handle.workflowId };
}

function content(id: string, version: number, text: string, at: number) {
  const c = Buffer.from(text);
  return { objectId: id, version, content: c, size: c.length, sha256: sha256(c), createdAt: at, updatedAt: at };
}

describe('dual-write-check: detection only, incremental between runs', () => {
  it('first run compares everything; the next ones only what changed; a config or identity change starts over', async () => {
    const t = await pairTarget(h, pool, 'postgres-objectstore', {
      objects: 3000,
      drift: { content_mismatch: 4, missing_in_b: 3, missing_in_a: 2 },
      newer: 'a',
    });
    const first = await check(t);
    expect(first.detection).toMatchObject({ mode: 'full', why: 'no stored segment summaries yet', total: 9 });
    expect(first.detection.severity).toBe('warning');
    expect(first.results).toMatchObject({ inconsistent: 9, severity: 'warning' });
    expect(first.steps.map((s) => [s.name, s.status])).toEqual([
      ['lock target', 'succeeded'],
      ['load environment', 'succeeded'],
      ['seal plan', 'succeeded'],
      ['detect', 'succeeded'],
      ['notify', 'succeeded'],
    ]);
    expect(first.steps.find((s) => s.name === 'approval')).toBeUndefined();

    // nothing changed: every segment kept, no row read
    const same = await check(t);
    expect(same.detection).toMatchObject({
      mode: 'incremental',
      total: 9,
      previous: { total: 9, severity: 'warning' },
    });
    expect(same.detection.stats).toMatchObject({ changed: 0, compared: 0, scannedA: 0, scannedB: 0 });
    expect(same.steps.find((s) => s.name === 'notify')).toMatchObject({ status: 'skipped' });
    expect(same.steps.find((s) => s.name === 'notify')!.result).toMatch(/^unchanged since the check of /);

    // a content change in Postgres, a delete in the object store, an insert on one side
    const [x] = await t.a.get([{ objectId: 'obj-00000500', version: 1 }]);
    await t.a.put([content(x!.objectId, 1, 'changed in postgres', x!.updatedAt + 1)]);
    await t.b.delete([{ objectId: 'obj-00002000', version: 1 }]);
    await t.b.put([content('obj-00001000-late', 1, 'only in the store', Date.UTC(2026, 3, 1))]);
    const changed = await check(t);
    expect(changed.detection.mode).toBe('incremental');
    expect(changed.detection.total).toBe(await differences(t));
    expect(changed.detection.total).toBe(12);
    expect(changed.detection.stats!.changed).toBeLessThanOrEqual(3);
    expect(changed.detection.stats!.reused).toBeGreaterThan(0);
    await saveHistory(h.client, changed.workflowId, 'incremental', 'dual-write-check');

    // the configuration changed: its summaries are not trusted
    editEnvironment(t, (env) => (env.targets.objects.dualWrite.detection = { pageSize: 1000 }));
    const reconfigured = await check(t);
    expect(reconfigured.detection).toMatchObject({ mode: 'full', why: 'configuration changed', total: 12 });

    // the object store replaced by a copy of itself (a restore, a new volume): not the same store
    await t.b.close();
    cpSync(t.where[1], `${t.where[1]}.copy`, { recursive: true });
    rmSync(t.where[1], { recursive: true });
    renameSync(`${t.where[1]}.copy`, t.where[1]);
    const replaced = await check(t);
    expect(replaced.detection).toMatchObject({ mode: 'full', why: 'side b is not the same store', total: 12 });
  });

  it('severity routes notifications: warning → ops; critical → critical and a page; resolved → ops; webhooks captured', async () => {
    const received = { ops: [] as string[], critical: [] as string[], pager: [] as string[] };
    const servers: Server[] = [];
    for (const name of ['ops', 'critical', 'pager'] as const) {
      const server = createServer((req, res) => {
        let body = '';
        req.on('data', (d: Buffer) => (body += d.toString()));
        req.on('end', () => {
          received[name].push((JSON.parse(body) as { text: string }).text);
          res.end('ok');
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      servers.push(server);
      process.env[`DWC_${name.toUpperCase()}_URL`] = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    }
    try {
      const t = await pairTarget(
        h,
        pool,
        'postgres-objectstore',
        { objects: 500, drift: { content_mismatch: 2, missing_in_b: 1 }, newer: 'a' },
        { severity: { criticalCount: 10 } },
      );
      editEnvironment(t, (env) => {
        env.notifications = {
          console: { type: 'log' },
          ops: { type: 'webhook', urlEnv: 'DWC_OPS_URL' },
          critical: { type: 'webhook', urlEnv: 'DWC_CRITICAL_URL' },
          pager: { type: 'webhook', urlEnv: 'DWC_PAGER_URL' },
        };
        env.severityRouting = { warning: { channels: ['ops'] }, critical: { channels: ['critical'], page: ['pager'] } };
      });
      const warning = await check(t);
      expect(warning.detection.severity).toBe('warning');
      expect(received.ops).toHaveLength(1);
      expect(received.ops[0]).toMatch(/^\*\[warning\] dual-write .*\/objects: 3 objects differ\*/);
      expect(received.ops[0]).toContain('Nothing was changed');
      expect([received.critical, received.pager]).toEqual([[], []]);

      // the same finding again: no second message
      await check(t);
      expect(received.ops).toHaveLength(1);

      // 10 more objects only in Postgres: critical
      const extra = Array.from({ length: 10 }, (_, i) => content(`obj-9-${i}`, 1, `x${i}`, Date.UTC(2026, 4, 1)));
      await t.a.put(extra);
      const critical = await check(t);
      expect(critical.detection).toMatchObject({ severity: 'critical', total: 13 });
      expect(critical.steps.find((s) => s.name === 'notify')!.result).toBe('critical → critical; page → pager');
      expect(received.critical).toHaveLength(1);
      expect(received.critical[0]).toMatch(/^\*\[critical\] dual-write .*: 13 objects differ\*/);
      expect(received.pager).toHaveLength(1);
      expect(received.pager[0]).toMatch(/^\*\[PAGE\] \[critical\] dual-write /);
      expect(received.ops).toHaveLength(1);
      await saveHistory(h.client, critical.workflowId, 'critical-page', 'dual-write-check');

      // repaired by hand: the store gets Postgres's copies; the next check is clean and says so to ops
      const inA = await allMeta(t.a);
      await t.b.put(await t.a.get(inA));
      const keysA = new Set(inA.map((m) => `${m.objectId}@${m.version}`));
      await t.b.delete((await allMeta(t.b)).filter((m) => !keysA.has(`${m.objectId}@${m.version}`)));
      expect(await differences(t)).toBe(0);
      const clean = await check(t);
      expect(clean.detection).toMatchObject({ severity: 'none', total: 0 });
      expect(received.ops).toHaveLength(2);
      expect(received.ops[1]).toMatch(/^\*\[resolved\] dual-write .*: consistent again\*/);
      // and clean again: nothing sent
      const quiet = await check(t);
      expect(quiet.steps.find((s) => s.name === 'notify')).toMatchObject({ status: 'skipped', result: 'consistent' });
      expect(received.ops).toHaveLength(2);
      expect([received.critical, received.pager].map((r) => r.length)).toEqual([1, 1]);
    } finally {
      for (const s of servers) s.close();
    }
  });

  it('severityRouting must name channels the environment has', async () => {
    const t = await pairTarget(h, pool, 'postgres-objectstore', { objects: 10, drift: {} });
    editEnvironment(t, (env) => (env.severityRouting = { critical: { page: ['pagerduty'] } }));
    await expect(loadEnvironment(h.environmentsDir, t.envName)).rejects.toThrow(
      /severityRouting\.critical\.page\.0.*no notification channel "pagerduty"/,
    );
  });
});
