import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunbookResult } from '../src/shared/types.js';
import { ensurePostgres } from '../src/dev/postgres.js';
import { freePort } from '../src/dev/ports.js';
import { Harness } from './support/harness.js';
import { sigkill, startChildWorker } from './support/child-worker.js';
import {
  allMeta,
  approveWhenReady,
  differences,
  pairTarget,
  partitionedRepair,
  startDualWrite,
} from './support/dual-write.js';
import { saveHistory } from './support/histories.js';

/** Workers in child processes; the suite kills them, and restarts a Postgres of its own, mid-repair. */
const h = new Harness();
const pool = new pg.Pool({ connectionString: h.databaseUrl });
const children: ChildProcess[] = [];
beforeAll(() => h.start({ worker: false }));
// every test brings its own workers (with the environment variables it needs)
afterEach(async () => {
  for (const c of children.splice(0)) await sigkill(c);
});
afterAll(async () => {
  await h.close();
  await pool.end();
});

type Execution = { applied: number; appliedNow: number; batches: number; resumedAt: number };

describe('dual-write repair survives crashes', () => {
  it('worker SIGKILLed during execute: the retry resumes after the last heartbeated batch and completes', async () => {
    const t = await pairTarget(
      h,
      pool,
      'postgres-objectstore',
      { objects: 400, drift: { content_mismatch: 60, missing_in_b: 20 }, newer: 'a' },
      { batchSize: 2, parallelism: 1, batchPause: '100ms' },
    );
    const a = await allMeta(t.a);
    const first = await startChildWorker(h, children);
    const handle = await startDualWrite(h, t);
    await approveWhenReady(h, handle);
    await h.waitFor(handle, (s) => s.currentStep === 'execute');
    // past the second heartbeat (the worker sends them at least every 2 s), well before the 40th batch
    await new Promise((r) => setTimeout(r, 3000));
    await sigkill(first.child);
    const second = await startChildWorker(h, children);
    const result = (await handle.result()) as RunbookResult & { outcome: string };
    expect(result.outcome).toBe('succeeded');
    // detection raised the inconsistency gauge; the verification pass brought the same series back to 0
    const metrics = await (await fetch(`http://127.0.0.1:${second.metricsPort}/metrics`)).text();
    expect(metrics).toMatch(
      new RegExp(`dual_write_inconsistency_detected\\{[^}]*environment="${t.envName}"[^}]*\\} 0\\n`),
    );
    expect(metrics).not.toMatch(/dual_write_inconsistency_detected\{[^}]*activityType/);
    const evidence = JSON.parse((await import('node:fs')).readFileSync(result.evidence!.path, 'utf8'));
    const execution = evidence.extra.execution as Execution;
    expect(execution.resumedAt).toBeGreaterThanOrEqual(5);
    expect(execution.resumedAt).toBeLessThan(40);
    // the retry applied only the batches from the last heartbeat on; the count covers the whole plan
    expect(execution.appliedNow).toBe(80 - execution.resumedAt * 2);
    expect(execution.applied).toBe(80);
    expect(result.steps.find((s) => s.name === 'execute')!.attempts).toBe(2);
    expect(await differences(t)).toBe(0);
    expect(await allMeta(t.a)).toEqual(a);
    await saveHistory(h.client, handle.workflowId, 'worker-killed-during-execute', 'dual-write-rollback');
  });

  it('a 10k-object repair runs as partition child workflows shared by two worker processes, continuing-as-new', async () => {
    const { handle } = await partitionedRepair(h, pool, children, 2);
    await saveHistory(h.client, `${handle.workflowId}--partition-0`, 'authorized', 'dual-write-repair-partition');
  });

  it('Postgres restarted during execute: batches fail, are retried, and the repair completes', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'restart-pg-'));
    const port = await freePort();
    let server = await ensurePostgres({ dataDir, port, database: 'restart_test', forceEmbedded: true });
    process.env.RESTART_PG_URL = server.url;
    const own = new pg.Pool({ connectionString: server.url });
    own.on('error', () => {});
    try {
      const t = await pairTarget(
        h,
        own,
        'postgres-objectstore',
        { objects: 200, drift: { content_mismatch: 40, missing_in_a: 10 }, newer: 'b' },
        { batchSize: 2, parallelism: 1, batchPause: '100ms' },
        {},
        'RESTART_PG_URL',
      );
      await startChildWorker(h, children, 0, { RESTART_PG_URL: server.url });
      const handle = await startDualWrite(h, t, { policy: 'store-authoritative' });
      await approveWhenReady(h, handle);
      await h.waitFor(handle, (s) => s.currentStep === 'execute');
      await new Promise((r) => setTimeout(r, 800));
      await server.stop();
      await new Promise((r) => setTimeout(r, 1500));
      server = await ensurePostgres({ dataDir, port, database: 'restart_test', forceEmbedded: true });
      const result = (await handle.result()) as RunbookResult;
      expect(result.outcome).toBe('succeeded');
      // the outage failed the activity; its retry resumed from the last heartbeated batch
      expect(result.steps.find((s) => s.name === 'execute')!.attempts).toBeGreaterThanOrEqual(2);
      expect(await differences(t)).toBe(0);
    } finally {
      await own.end();
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
