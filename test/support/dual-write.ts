import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { stringify } from 'yaml';
import type { WorkflowHandle } from '@temporalio/client';
import { approveSignal } from '../../src/shared/messages.js';
import type { DualWriteRollbackInput } from '../../src/shared/schemas.js';
import { diffStores } from '../../src/activities/stores/diff.js';
import { ObjectStore } from '../../src/activities/stores/object-store.js';
import { PostgresTableStore } from '../../src/activities/stores/postgres-table.js';
import { SqliteTableStore } from '../../src/activities/stores/sqlite-table.js';
import type { ObjectStoreAdapter, ObjectMeta } from '../../src/activities/stores/types.js';
import { seedDrift, type DriftSpec } from '../../src/demo/seed-drift.js';
import type { Harness } from './harness.js';

export type Pair = 'postgres-objectstore' | 'sqlite-objectstore' | 'postgres-sqlite';
let n = 0;

export interface PairTarget {
  envName: string;
  a: ObjectStoreAdapter;
  b: ObjectStoreAdapter;
  injected: Awaited<ReturnType<typeof seedDrift>>;
}

/** An environment with target "objects": two real stores seeded with known drift. */
export async function pairTarget(
  h: Harness,
  pool: pg.Pool,
  pair: Pair,
  spec: DriftSpec,
  dualWrite: Record<string, unknown> = {},
  extraTargets: Record<string, unknown> = {},
  urlEnv = 'DEMO_DATABASE_URL',
): Promise<PairTarget> {
  const envName = `dw${n++}`;
  const dir = join(h.root, 'dw', envName);
  mkdirSync(dir, { recursive: true });
  mkdirSync(h.environmentsDir, { recursive: true });
  const table = `dw_${process.pid}_${Date.now() % 1_000_000}_${n}`;
  const sides = pair.split('-') as Array<'postgres' | 'sqlite' | 'objectstore'>;
  const stores: ObjectStoreAdapter[] = [];
  const configs: unknown[] = [];
  for (const [i, kind] of sides.entries()) {
    if (kind === 'postgres') {
      // Postgres keeps stored fingerprints (trigger-maintained column) in every pair
      const columns = { fingerprint: 'row_fp' };
      const store = new PostgresTableStore({ pool, table: `${table}_${i}`, create: true, columns });
      await store.init();
      stores.push(store);
      configs.push({ type: 'postgres', urlEnv, table: `${table}_${i}`, columns });
    } else if (kind === 'sqlite') {
      // SQLite stores them in postgres-sqlite and computes them per row in sqlite-objectstore
      const columns = pair === 'postgres-sqlite' ? { fingerprint: 'row_fp' } : {};
      const path = join(dir, `side${i}.sqlite`);
      stores.push(new SqliteTableStore({ path, table: 'objects', create: true, columns }));
      configs.push({ type: 'sqlite', path, table: 'objects', columns });
    } else {
      const root = join(dir, `store${i}`);
      stores.push(await ObjectStore.open(root));
      configs.push({ type: 'object-store', root });
    }
  }
  const injected = await seedDrift(stores[0]!, stores[1]!, spec);
  writeFileSync(
    join(h.environmentsDir, `${envName}.yaml`),
    stringify({
      name: envName,
      approval: { approvers: ['alice', 'bob', 'carol'], quorum: 1, timeout: '1h' },
      escalation: [{ level: 1, after: '0s' }],
      targets: {
        objects: {
          dualWrite: { a: configs[0], b: configs[1], workDir: join(dir, 'work'), batchSize: 7, ...dualWrite },
        },
        ...extraTargets,
      },
    }),
  );
  return { envName, a: stores[0]!, b: stores[1]!, injected };
}

export async function allMeta(store: ObjectStoreAdapter): Promise<ObjectMeta[]> {
  const rows: ObjectMeta[] = [];
  for await (const page of store.scan({}, 1000)) rows.push(...page);
  return rows;
}

export async function differences(t: PairTarget): Promise<number> {
  let count = 0;
  for await (const _e of diffStores(t.a, t.b, {}, { mergeOnly: true })) count++;
  return count;
}

export function startDualWrite(
  h: Harness,
  t: PairTarget,
  input: Partial<DualWriteRollbackInput> = {},
): Promise<WorkflowHandle> {
  return h.client.workflow.start('dualWriteRollback', {
    taskQueue: h.taskQueue,
    workflowId: `dwr-${t.envName}-${n++}`,
    args: [
      {
        environment: t.envName,
        target: 'objects',
        requester: 'rita',
        policy: 'postgres-authoritative',
        reason: 'drift alert',
        ...input,
      },
    ],
  });
}

export async function approveWhenReady(h: Harness, handle: WorkflowHandle): Promise<void> {
  const s = await h.waitForApproval(handle);
  await handle.signal(approveSignal, { by: 'alice', planHash: s.planHash! });
}
