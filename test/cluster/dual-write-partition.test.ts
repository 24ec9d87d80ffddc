/**
 * On the cluster (vitest project `cluster`): the 10k-object dual-write repair of test/dual-write-crash.test.ts,
 * partitioned over three worker processes instead of two.
 */
import type { ChildProcess } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { Harness } from '../support/harness.js';
import { sigkill } from '../support/child-worker.js';
import { partitionedRepair } from '../support/dual-write.js';

const h = new Harness();
const pool = new pg.Pool({ connectionString: h.databaseUrl });
const children: ChildProcess[] = [];
beforeAll(() => h.start({ worker: false }));
afterAll(async () => {
  for (const c of children.splice(0)) await sigkill(c);
  await h.close();
  await pool.end();
});

describe('dual-write repair on the cluster', () => {
  it('a 10k-object repair runs as partition child workflows shared by three worker processes, continuing-as-new', async () => {
    await partitionedRepair(h, pool, children, 3);
  });
});
