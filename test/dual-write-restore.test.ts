import { existsSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { WorkflowFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../src/shared/constants.js';
import type { RunbookResult } from '../src/shared/types.js';
import {
  abortDuringExecute,
  activityAttempts,
  activityFailure,
  approveWhenReady,
  differences,
  dualWriteSuite,
  everything,
  pairTarget,
  startDualWrite,
} from './support/dual-write.js';

const { h, pool } = dualWriteSuite();

/** the `undo` proxy's heartbeat timeout in dual-write-rollback.ts */
const UNDO_HEARTBEAT_TIMEOUT_MS = 10_000;

describe('snapshot restore (the undo of snapshot + execute)', () => {
  it('an abort during execute of a repair whose restore outlasts the heartbeat timeout restores the target byte-identical, in one attempt', async () => {
    // 200 actions restored in batches of 4 with a 250 ms pause each: 50 batches, over 12 s of restore
    const t = await pairTarget(
      h,
      pool,
      'postgres-objectstore',
      { objects: 400, drift: { content_mismatch: 120, missing_in_a: 40, missing_in_b: 40 }, newer: 'a' },
      { batchSize: 4, parallelism: 1, batchPause: '250ms' },
    );
    const before = await everything(t.b);
    const { handle, result } = await abortDuringExecute(h, t, 1000);
    expect(result.outcome).toBe('aborted');
    expect(result.compensations.map((c) => [c.step, c.status])).toEqual([['snapshot', 'succeeded']]);
    const [undo] = result.compensations;
    // the premise: the restore took longer than the heartbeat timeout, and no attempt timed out
    expect(Date.parse(undo!.endedAt) - Date.parse(undo!.startedAt)).toBeGreaterThan(UNDO_HEARTBEAT_TIMEOUT_MS);
    expect(await activityAttempts(handle, 'restoreSnapshot')).toBe(1);
    expect(await everything(t.b)).toEqual(before);
    expect(await differences(t)).toBe(200);
  });
});

describe('digests read from a store', () => {
  it('a row whose sha256 column holds a path fails the snapshot with InvalidDigest naming the object, writing nothing outside the work dir', async () => {
    const t = await pairTarget(h, pool, 'postgres-objectstore', {
      objects: 60,
      drift: { content_mismatch: 3 },
      newer: 'b',
    });
    const victim = t.injected[1]!;
    const crafted = `../../../../../escape-${t.envName}`;
    await pool.query(`UPDATE "${t.where[0]}" SET sha256 = $1 WHERE object_id = $2 AND version = $3`, [
      crafted,
      victim.objectId,
      victim.version,
    ]);
    // where the blob of that "digest" would land under <workDir>/<run>/snapshot/blobs/ (any run directory)
    const traversal = resolve(t.workDir, 'run', 'snapshot', 'blobs', crafted);
    expect(traversal.startsWith(t.workDir)).toBe(false);
    const outside = readdirSync(resolve(t.workDir, '..', '..')).sort();

    const handle = await startDualWrite(h, t, { policy: 'store-authoritative' });
    await approveWhenReady(h, handle);
    const failed = await handle.result().catch((e: unknown) => e);
    const result = ((failed as WorkflowFailedError).cause as ApplicationFailure).details![0] as RunbookResult;
    expect(result.outcome).toBe('failed');
    const snapshot = result.steps.find((s) => s.name === 'snapshot')!;
    expect(snapshot.status).toBe('failed');
    expect(snapshot.attempts).toBe(1);
    expect(snapshot.error).toContain(`${victim.objectId}@${victim.version} on postgres`);
    expect(snapshot.error).toContain('is not a sha256 hex digest');
    const failure = await activityFailure(handle, 'snapshotTargets');
    expect(failure).toMatchObject({ type: ErrorType.InvalidDigest, nonRetryable: true, attempt: 1 });
    expect(existsSync(traversal)).toBe(false);
    expect(existsSync(`${traversal}.tmp`)).toBe(false);
    expect(readdirSync(resolve(t.workDir, '..', '..')).sort()).toEqual(outside);
    // nothing was repaired
    expect(await differences(t)).toBe(3);
  });
});
