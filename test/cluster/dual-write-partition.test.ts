/**
 * On the cluster (vitest project `cluster`): the 10k-object dual-write repair of test/dual-write-crash.test.ts,
 * partitioned over three worker processes instead of two; and once more with one of them SIGKILLed mid-repair.
 */
import type { ChildProcess } from 'node:child_process';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Harness } from '../support/harness.js';
import { sigkill } from '../support/child-worker.js';
import { partitionedRepair } from '../support/dual-write.js';

const h = new Harness();
const pool = new pg.Pool({ connectionString: h.databaseUrl });
const children: ChildProcess[] = [];
beforeAll(() => h.start({ worker: false }));
// each test brings its own workers
afterEach(async () => {
  for (const c of children.splice(0)) await sigkill(c);
});
afterAll(async () => {
  await h.close();
  await pool.end();
});

describe('dual-write repair on the cluster', () => {
  it('a 10k-object repair runs as partition child workflows shared by three worker processes, continuing-as-new', async () => {
    await partitionedRepair(h, pool, children, 3);
  });

  it('one of the three worker processes SIGKILLed mid-repair: the other two finish its chunk and the repair, each action once', async () => {
    const { killed } = await partitionedRepair(h, pool, children, 3, { killOne: true });
    expect(killed?.pid).toBeGreaterThan(0);
  });
});
