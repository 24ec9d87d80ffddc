/** Opens the stores of a case from their SideSpecs: in the detection child, and in the parent after a repair. */
import pg from 'pg';
import { ObjectStore } from '../../src/activities/stores/object-store.js';
import { PostgresTableStore } from '../../src/activities/stores/postgres-table.js';
import { SqliteTableStore } from '../../src/activities/stores/sqlite-table.js';
import type { ObjectStoreAdapter } from '../../src/activities/stores/types.js';
import type { SideSpec } from './job.js';

/** The side as an environment file states it (dualWrite.a / .b); a Postgres side's url is in `urlEnv`. */
export function sideConfig(spec: SideSpec, urlEnv: string): Record<string, unknown> {
  // the tables' stored fingerprint columns, as seeded (without them detection would compute every row's fingerprint)
  const columns = (fingerprint?: string) => (fingerprint ? { columns: { fingerprint } } : {});
  switch (spec.type) {
    case 'postgres':
      return { type: 'postgres', urlEnv, table: spec.table, ...columns(spec.fingerprint) };
    case 'sqlite':
      return { type: 'sqlite', path: spec.path, table: spec.table, ...columns(spec.fingerprint) };
    case 'object-store':
      return { type: 'object-store', root: spec.root };
  }
}

export function openSide(spec: SideSpec, pool: pg.Pool): ObjectStoreAdapter {
  const columns = (fingerprint?: string) => (fingerprint ? { fingerprint } : undefined);
  switch (spec.type) {
    case 'postgres':
      return new PostgresTableStore({ pool, table: spec.table, columns: columns(spec.fingerprint) });
    case 'sqlite':
      return new SqliteTableStore({ path: spec.path, table: spec.table, columns: columns(spec.fingerprint) });
    case 'object-store':
      return new ObjectStore({ root: spec.root });
  }
}

/** Both sides open (on a pool of `poolSize` connections) while `work` runs; closed after it. */
export async function withSides<T>(
  pgUrl: string,
  spec: { a: SideSpec; b: SideSpec },
  work: (a: ObjectStoreAdapter, b: ObjectStoreAdapter, pool: pg.Pool) => Promise<T>,
  poolSize = 8,
): Promise<T> {
  const pool = new pg.Pool({ connectionString: pgUrl, max: poolSize });
  pool.on('error', () => {});
  const a = openSide(spec.a, pool);
  const b = openSide(spec.b, pool);
  try {
    return await work(a, b, pool);
  } finally {
    await Promise.all([a.close(), b.close()]);
    await pool.end();
  }
}
