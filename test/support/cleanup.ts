import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { cleanupSection, seedCleanupDemo } from '../../src/demo/cleanup-demo.js';
import type { Harness } from './harness.js';
import { writeEnvironment } from './environments.js';

let counter = 0;

export const CLEANUP_TABLES = [
  'organizations_team',
  'organizations_teammembership',
  'organizations_teammigrationmap',
  'teams_team',
  'teams_teammembership',
] as const;

/** What the seed's test teams 11, 12, 13 (and their legacy teams 111-113) amount to. */
export const TEST_COUNTS = {
  organizations_team: 3,
  organizations_teammembership: 9,
  organizations_teammigrationmap: 3,
  teams_team: 3,
  teams_teammembership: 9,
};

/** Starts the file's harness with a pool on the suite's Postgres (ended before the harness closes). */
export function harnessWithPool(h: Harness): () => pg.Pool {
  let pool: pg.Pool | undefined;
  beforeAll(async () => {
    await h.start();
    pool = new pg.Pool({ connectionString: h.databaseUrl, max: 4 });
  });
  afterAll(async () => {
    await pool?.end();
    await h.close();
  });
  return () => pool!;
}

export interface CleanupTestTarget {
  envName: string;
  schema: string;
  workDir: string;
  /** schema-qualified table name */
  t(table: string): string;
  /** every row of every table as row_to_json text, in key order */
  snapshot(): Promise<Record<string, string[]>>;
}

/**
 * The seed's team tables in a Postgres schema of the test's own, and an environment whose target `cleanup`
 * describes them (`mutate` changes the section before it is written: invalid configurations).
 */
export async function cleanupTarget(
  h: Harness,
  pool: pg.Pool,
  mutate: (section: Record<string, any>, schema: string) => void = () => {},
): Promise<CleanupTestTarget> {
  const n = counter++;
  const schema = `cleanup_${process.pid}_${n}`;
  const envName = `cl${process.pid}-${n}`;
  const workDir = join(h.root, 'cleanup', envName);
  await seedCleanupDemo(pool, schema);
  const section = cleanupSection(schema, { workDir });
  mutate(section, schema);
  writeEnvironment(h.environmentsDir, {
    name: envName,
    approval: { approvers: ['alice', 'bob'], quorum: 1, timeout: '1h' },
    escalation: [{ level: 1, after: '0s' }],
    evidence: { workerKeys: [h.workerKey.publicKey] },
    targets: { cleanup: { cleanup: section } },
  });
  const t = (table: string) => `${schema}.${table}`;
  return {
    envName,
    schema,
    workDir,
    t,
    async snapshot() {
      const out: Record<string, string[]> = {};
      for (const table of CLEANUP_TABLES) {
        const r = await pool.query<{ j: string }>(
          `SELECT row_to_json(x)::text AS j FROM "${schema}"."${table}" x ORDER BY id`,
        );
        out[table] = r.rows.map((row) => row.j);
      }
      return out;
    },
  };
}
