import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { abortSignal, approveSignal } from '../src/shared/messages.js';
import { ErrorType } from '../src/shared/constants.js';
import type { RunbookResult } from '../src/shared/types.js';
import {
  abortDuringExecute,
  allMeta,
  approveWhenReady,
  differences,
  dualWriteSuite,
  everything,
  pairTarget,
  startDualWrite,
  type Pair,
} from './support/dual-write.js';
import { runbook } from './support/cli.js';
import { saveHistory } from './support/histories.js';

const { h, pool } = dualWriteSuite();

const ALL_CLASSES = { missing_in_a: 3, missing_in_b: 4, content_mismatch: 5, metadata_mismatch: 2 };

describe('dual-write rollback against real stores', () => {
  it.each<Pair>(['postgres-objectstore', 'sqlite-objectstore', 'postgres-sqlite'])(
    '%s, postgres-authoritative: every drift class detected exactly, side b repaired, a untouched',
    async (pair) => {
      const t = await pairTarget(h, pool, pair, { objects: 200, drift: ALL_CLASSES, newer: 'a' });
      const before = await allMeta(t.a);
      const handle = await startDualWrite(h, t);
      const waiting = await h.waitForApproval(handle);
      expect(waiting.plan!.summary).toContain('14 objects differ');
      await handle.signal(approveSignal, { by: 'alice', planHash: waiting.planHash! });
      const result = (await handle.result()) as RunbookResult & { outcome: string };
      expect(result.outcome).toBe('succeeded');
      const evidence = JSON.parse(readFileSync(result.evidence!.path, 'utf8'));
      expect(evidence.extra.detection.counts).toEqual(ALL_CLASSES);
      const detected = readFileSync(evidence.extra.detection.path, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(detected.map((e: { objectId: string; class: string }) => `${e.objectId}:${e.class}`).sort()).toEqual(
        t.injected.map((e) => `${e.objectId}:${e.class}`).sort(),
      );
      expect(await differences(t)).toBe(0);
      expect(await allMeta(t.a)).toEqual(before);
      expect(evidence.extra.execution.applied).toBe(14);
      const rollback = JSON.parse(readFileSync(evidence.extra.artifacts.rollback.path, 'utf8'));
      expect(evidence.extra.artifacts.rollback.path).toMatch(/dual_write_rollback_\d{8}\.json$/);
      expect(rollback.rollback_details.objects_differing).toBe(14);
      expect(rollback.rollback_details.objects_compared).toEqual({ postgres: 197, store: 196 });
      const verification = JSON.parse(readFileSync(evidence.extra.artifacts.verification.path, 'utf8'));
      expect(verification.remaining_differences).toBe(0);
      expect(verification.repaired_objects_verified).toBe(14);
      if (pair === 'postgres-objectstore')
        await saveHistory(h.client, handle.workflowId, 'postgres-authoritative', 'dual-write-rollback');
    },
  );

  it.each([
    ['bisect over many small segments and windows', { mode: 'bisect', segmentRows: 16, windowSegments: 8 }],
    [
      'bisect comparing fingerprint lists after the first window (detection.listAbove: 0)',
      { mode: 'bisect', segmentRows: 16, windowSegments: 8, listAbove: 0 },
    ],
    ['the streaming merge', { mode: 'merge' }],
  ])('%s finds exactly the same drift', async (_name, detection) => {
    const t = await pairTarget(
      h,
      pool,
      'postgres-objectstore',
      {
        objects: 3000,
        drift: { missing_in_a: 2, missing_in_b: 2, content_mismatch: 3, metadata_mismatch: 1 },
        newer: 'a',
      },
      { detection },
    );
    const handle = await startDualWrite(h, t, { dryRun: true });
    const result = (await handle.result()) as RunbookResult;
    const evidence = JSON.parse(readFileSync(result.evidence!.path, 'utf8'));
    const stats = evidence.extra.detection.stats;
    expect(stats.mode).toBe(detection.mode);
    if ('listAbove' in detection) {
      // a window after one with any differing segment lists all its segments without summing them: fewer
      // summaries than segments, and more rows listed than the differing segments alone hold
      expect(stats.summaries).toBeLessThan(2 * Math.ceil(2998 / 16));
      expect(stats.listedA).toBeGreaterThan(8 * 17);
      expect(stats.rowsA).toBe(2998);
    } else if (detection.mode === 'bisect') {
      // 3000 rows in segments of 16: the 8 drifted keys touch at most 8 segments of ~16 rows (+ their metadata)
      expect(stats.summaries).toBeGreaterThan(2 * (3000 / 16));
      expect(stats.scannedA).toBeLessThanOrEqual(8 * 17 + 8);
      expect(stats.rowsA).toBe(2998);
    } else {
      expect(stats.summaries).toBe(0);
      expect(stats.scannedA).toBe(2998);
    }
    const detected = readFileSync(evidence.extra.detection.path, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(detected.map((e: { objectId: string; class: string }) => `${e.objectId}:${e.class}`).sort()).toEqual(
      t.injected.map((e) => `${e.objectId}:${e.class}`).sort(),
    );
  });

  it('store-authoritative repairs side a from b and leaves b untouched', async () => {
    const t = await pairTarget(h, pool, 'sqlite-objectstore', { objects: 120, drift: ALL_CLASSES, newer: 'b' });
    const before = await allMeta(t.b);
    const handle = await startDualWrite(h, t, { policy: 'store-authoritative' });
    await approveWhenReady(h, handle);
    expect(((await handle.result()) as RunbookResult).outcome).toBe('succeeded');
    expect(await differences(t)).toBe(0);
    expect(await allMeta(t.b)).toEqual(before);
  });

  it('newest-wins decides per object by updated time; ties go to the configured side', async () => {
    const t = await pairTarget(
      h,
      pool,
      'sqlite-objectstore',
      { objects: 100, drift: { content_mismatch: 4 }, newer: 'b' },
      { tieBreaker: 'b' },
    );
    // one more object where only createdAt differs: a tie on updatedAt
    const [tie] = await t.a.get([{ objectId: 'obj-00000001', version: 1 }]);
    await t.b.put([{ ...tie!, createdAt: tie!.createdAt + 5 }]);
    const newerInB = await t.b.get(t.injected);
    const handle = await startDualWrite(h, t, { policy: 'newest-wins' });
    await approveWhenReady(h, handle);
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect(await differences(t)).toBe(0);
    const nowInA = await t.a.get(t.injected);
    expect(nowInA.map((o) => o.sha256)).toEqual(newerInB.map((o) => o.sha256));
    const [tieNow] = await t.a.get([tie!]);
    expect(tieNow!.createdAt).toBe(tie!.createdAt + 5);
  });

  it('critical severity halts dual writes first; an abort restores the flag', async () => {
    const web = await h.demoTarget();
    const webEnv = readFileSync(join(h.environmentsDir, `${web.envName}.yaml`), 'utf8');
    const webTarget = (await import('yaml')).parse(webEnv).targets.web;
    const t = await pairTarget(
      h,
      pool,
      'sqlite-objectstore',
      { objects: 50, drift: { metadata_mismatch: 2 }, newer: 'b' },
      { haltTarget: 'web' },
      { web: webTarget },
    );
    const handle = await startDualWrite(h, t);
    const waiting = await h.waitForApproval(handle);
    expect(waiting.plan!.summary).toContain('severity critical');
    expect(waiting.steps.find((s) => s.name === 'halt dual writes')!.status).toBe('succeeded');
    expect(readFileSync(web.envFile, 'utf8')).toContain('TEAM_VNEXT_DUAL_WRITE_ENABLED=false');
    await handle.signal(abortSignal, { by: 'bob', reason: 'investigate first' });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('aborted');
    expect(result.compensations.map((c) => [c.step, c.status])).toEqual([['halt dual writes', 'succeeded']]);
    expect(readFileSync(web.envFile, 'utf8')).toBe(web.initialFlags);
    expect(await differences(t)).toBe(2);
  });

  it('abort during execute restores the target side byte-identical from the snapshot', async () => {
    const t = await pairTarget(
      h,
      pool,
      'postgres-objectstore',
      { objects: 300, drift: { content_mismatch: 40, missing_in_a: 10, missing_in_b: 10 }, newer: 'a' },
      { batchSize: 5, parallelism: 1, batchPause: '150ms' },
    );
    const before = await everything(t.b);
    const { handle, result } = await abortDuringExecute(h, t, 500);
    expect(result.outcome).toBe('aborted');
    expect(result.compensations.map((c) => [c.step, c.status])).toEqual([['snapshot', 'succeeded']]);
    expect(await everything(t.b)).toEqual(before);
    expect(await differences(t)).toBe(60);
    await saveHistory(h.client, handle.workflowId, 'abort-during-execute', 'dual-write-rollback');
  });

  it('differences left after the repair fail verification, and the undo restores what the run changed', async () => {
    const t = await pairTarget(
      h,
      pool,
      'sqlite-objectstore',
      { objects: 100, drift: { content_mismatch: 10 }, newer: 'a' },
      { batchSize: 1, parallelism: 1, batchPause: '100ms' },
    );
    const before = await allMeta(t.b);
    const handle = await startDualWrite(h, t);
    await approveWhenReady(h, handle);
    await h.waitFor(handle, (s) => s.currentStep === 'execute');
    // a writer outside the runbook adds an object to one side only while the repair runs
    const content = Buffer.from('late write');
    const { createHash } = await import('node:crypto');
    await t.b.put([
      {
        objectId: 'zzz-late',
        version: 1,
        content,
        size: content.length,
        sha256: createHash('sha256').update(content).digest('hex'),
        createdAt: 1,
        updatedAt: 1,
      },
    ]);
    const failed = await handle.result().catch((e: unknown) => e);
    const cause = (failed as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause.type).toBe(ErrorType.RunbookFailed);
    const result = cause.details![0] as RunbookResult;
    expect(result.outcome).toBe('failed');
    expect(result.steps.find((s) => s.name === 'verify')!.error).toContain('1 differences remain after the repair');
    expect(result.compensations.map((c) => [c.step, c.status])).toEqual([['snapshot', 'succeeded']]);
    // everything the run touched is back; the outside write is left alone
    expect((await allMeta(t.b)).filter((m) => m.objectId !== 'zzz-late')).toEqual(before);
    expect(await differences(t)).toBe(11);
  });

  it('dry run detects, isolates, decides and plans but changes nothing', async () => {
    const t = await pairTarget(h, pool, 'sqlite-objectstore', { objects: 80, drift: ALL_CLASSES });
    const [a, b] = [await allMeta(t.a), await allMeta(t.b)];
    const handle = await startDualWrite(h, t, { dryRun: true });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('dry_run');
    expect(result.plan!.summary).toContain('14 objects differ');
    expect(result.steps.find((s) => s.name === 'snapshot')!.status).toBe('skipped');
    expect([await allMeta(t.a), await allMeta(t.b)]).toEqual([a, b]);
    expect(existsSync(result.evidence!.path)).toBe(true);
  });

  it('a repair partition started on its own (not by an approved rollback) is refused and changes nothing', async () => {
    const t = await pairTarget(h, pool, 'sqlite-objectstore', { objects: 40, drift: { missing_in_b: 5 } });
    const planned = (await (await startDualWrite(h, t, { dryRun: true })).result()) as RunbookResult;
    const plan = (planned.plan!.details as { plan: { path: string; sha256: string } }).plan;
    const before = await allMeta(t.b);
    const alone = await h.client.workflow.start('dualWriteRepairPartition', {
      taskQueue: h.taskQueue,
      workflowId: `partition-alone-${t.envName}`,
      args: [
        {
          ref: { environment: t.envName, target: 'objects', runKey: 'forged' },
          plan,
          from: 0,
          to: 5,
          chunkObjects: 5,
          batchSize: 5,
          parallelism: 1,
        },
      ],
    });
    const err = await alone.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause!.cause as ApplicationFailure;
    expect(cause).toMatchObject({ type: ErrorType.NotAuthorized, nonRetryable: true });
    expect(cause.message).toBe(
      'repair partition refused: it was not started by a dualWriteRollback run (no parent workflow); nothing was changed',
    );
    const history = await alone.fetchHistory();
    const activities = history.events!.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
    expect(activities).toEqual(['authorizeRepairPartition']);
    expect(await allMeta(t.b)).toEqual(before);
    expect(await differences(t)).toBe(5);
  });

  it('bad input and bad environments fail non-retryably, naming the field, changing nothing', async () => {
    const t = await pairTarget(h, pool, 'sqlite-objectstore', { objects: 20, drift: { missing_in_b: 1 } });
    const bad = await startDualWrite(h, t, { policy: 'loudest-wins' as never });
    const err = await bad.result().catch((e: unknown) => e);
    expect(((err as WorkflowFailedError).cause as ApplicationFailure).type).toBe(ErrorType.InvalidInput);
    expect((err as WorkflowFailedError).cause!.message).toContain('policy:');

    const env = join(h.environmentsDir, `${t.envName}.yaml`);
    const original = readFileSync(env, 'utf8');
    for (const [broken, field] of [
      [original.replace('type: sqlite', 'type: mongodb'), 'targets.objects.dualWrite.a.type'],
      [original.replace('table: objects', 'table: objects; drop table x'), 'targets.objects.dualWrite.a.table'],
    ] as const) {
      writeFileSync(env, broken);
      const handle = await startDualWrite(h, t);
      const failed = await handle.result().catch((e: unknown) => e);
      const result = ((failed as WorkflowFailedError).cause as ApplicationFailure).details![0] as RunbookResult;
      expect(result.steps[0]!.error).toContain(field);
    }
    writeFileSync(env, original);
    expect(await differences(t)).toBe(1);
  });
});

describe('stored fingerprints on existing tables', () => {
  it('a configured fingerprint that is not installed fails the run at once, naming the fix; `runbook dual-write prepare` installs it', async () => {
    // a pair whose tables exist without the fingerprint machinery (as someone's production tables would)
    const t = await pairTarget(h, pool, 'postgres-sqlite', {
      objects: 300,
      drift: { content_mismatch: 2, missing_in_a: 1 },
      newer: 'a',
    });
    const env = join(h.environmentsDir, `${t.envName}.yaml`);
    const config = readFileSync(env, 'utf8');
    const pgTable = /table: (dw_\S+_0)/.exec(config)![1]!;
    const sqlitePath = /path: (\S+side1\.sqlite)/.exec(config)![1]!;
    await pool.query(`DROP TRIGGER "${pgTable}_dr_fp" ON "${pgTable}"; ALTER TABLE "${pgTable}" DROP COLUMN row_fp`);
    const db = new Database(sqlitePath);
    db.exec('DROP TRIGGER objects_dr_fingerprint');
    db.close();

    const first = await startDualWrite(h, t, { dryRun: true });
    const failed = await first.result().catch((e: unknown) => e);
    const result = ((failed as WorkflowFailedError).cause as ApplicationFailure).details![0] as RunbookResult;
    expect(result.outcome).toBe('failed');
    const load = result.steps.find((s) => s.name === 'load environment')!;
    expect(load.error).toMatch(
      /fingerprint column "row_fp" does not exist; install it with `npx runbook dual-write prepare/,
    );
    expect(load.attempts).toBe(1);

    const prepared = await runbook(['dual-write', 'prepare', '--env', t.envName, '--target', 'objects'], h.env());
    expect(prepared.code, prepared.stderr).toBe(0);
    expect(prepared.stdout).toContain(
      `a (postgres): postgres table ${pgTable}: fingerprint column row_fp, its trigger and index installed`,
    );
    expect(prepared.stdout).toContain('b (store): sqlite');
    // idempotent
    expect((await runbook(['dual-write', 'prepare', '--env', t.envName, '--target', 'objects'], h.env())).code).toBe(0);

    const second = await startDualWrite(h, t, { dryRun: true });
    const ok = (await second.result()) as RunbookResult;
    expect(ok.outcome).toBe('dry_run');
    const evidence = JSON.parse(readFileSync(ok.evidence!.path, 'utf8'));
    expect(evidence.extra.detection.counts).toEqual({
      missing_in_a: 1,
      missing_in_b: 0,
      content_mismatch: 2,
      metadata_mismatch: 0,
    });
    expect(evidence.extra.detection.stats.mode).toBe('bisect');

    const missing = await runbook(['dual-write', 'prepare', '--env', t.envName, '--target', 'nope'], h.env());
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/invalid environment: .*targets\.nope: unknown target/);
  });
});
