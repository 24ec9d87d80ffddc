import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, expect, inject } from 'vitest';
import { sha256 } from '../../src/activities/digest.js';
import { compareKeys } from '../../src/activities/stores/fingerprint.js';
import { ObjectStore } from '../../src/activities/stores/object-store.js';
import { PostgresTableStore } from '../../src/activities/stores/postgres-table.js';
import { SqliteTableStore } from '../../src/activities/stores/sqlite-table.js';
import type {
  KeyRange,
  ObjectKey,
  ObjectMeta,
  ObjectStoreAdapter,
  StoredObject,
} from '../../src/activities/stores/types.js';

/**
 * Fixtures of the store tests (test/stores/): temporary directories, a Postgres pool, every ObjectStoreAdapter as a
 * test subject, and the rows they are filled with. The use*() functions register the hooks that set up and tear
 * down what they return: call them at the top of a test file, which then sets up only what it uses.
 */

// ---- temporary directories and Postgres ----

/** A maker of temporary directories, all removed after the file's tests. */
export function useTempDirs(): () => string {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), 'runbook-stores-'));
    dirs.push(dir);
    return dir;
  };
}

export interface TestPostgres {
  pool: pg.Pool;
  /** application_name of the pool: the connection test kills only these connections */
  poolName: string;
  /** part of every table name: test files run in parallel processes against one Postgres */
  runId: string;
}

/** The suite's Postgres, through a pool of the file's own that is ended after its tests. */
export function usePostgres(): TestPostgres {
  const runId = `${process.pid}_${Date.now() % 1e6}`;
  const poolName = `stores_test_${runId}`;
  const pool = new pg.Pool({ connectionString: inject('databaseUrl'), max: 4, application_name: poolName });
  afterAll(() => pool.end());
  return { pool, poolName, runId };
}

// ---- every adapter as a test subject ----

export type SubjectName =
  | 'sqlite-table'
  | 'postgres-table'
  | 'postgres-table (existing table, ICU collation, sha256 computed in Postgres, stored fingerprints)'
  | 'postgres-table (stored fingerprints)'
  | 'postgres-table (content by reference)'
  | 'sqlite-table (stored fingerprints)'
  | 'object-store';

export interface Subject {
  name: SubjectName;
  open(): Promise<ObjectStoreAdapter>;
  /** changes one row's recorded size behind the adapter's back (put() cannot: it checks size against content) */
  tamperSize(key: ObjectKey, size: number): Promise<void>;
  /** builds the adapter with a bad table or column name (absent: the adapter takes no names) */
  withNames?(names: { table?: string; column?: string }): unknown;
}

export interface TestStores {
  /** the adapters under test, in a fixed order */
  subjects: Subject[];
  /** their open stores by name, in the same order (from beforeAll on; closed after the file's tests) */
  stores: Map<SubjectName, ObjectStoreAdapter>;
  store(name: SubjectName): ObjectStoreAdapter;
  /** the table of the 'postgres-table' subject (content as bytea) */
  postgresTable: string;
  postgres: TestPostgres;
  tempDir: () => string;
}

/** Opens every subject (or the `only` ones) before the file's tests, each on its own fresh table, file or dir. */
export function useStores(only?: readonly SubjectName[]): TestStores {
  const tempDir = useTempDirs();
  const postgres = usePostgres();
  const { pool, runId } = postgres;
  const pgTable = `objs_${runId}`;
  const pgTableNoSha = `objs_nosha_${runId}`;
  const pgTableFp = `objs_fp_${runId}`;
  const pgTableRef = `objs_ref_${runId}`;
  let sqlitePath: string;
  let sqliteFpPath: string;
  let objectRoot: string;
  const sqliteSize =
    (path: () => string): Subject['tamperSize'] =>
    async (k, size) => {
      const db = new Database(path());
      db.prepare('UPDATE objects SET size = ? WHERE object_id = ? AND version = ?').run(size, k.objectId, k.version);
      db.close();
    };
  const postgresSize =
    (table: string, columns = { size: 'size', objectId: 'object_id', version: 'version' }): Subject['tamperSize'] =>
    async (k, size) => {
      await pool.query(
        `UPDATE "${table}" SET ${columns.size} = $1 WHERE ${columns.objectId} = $2 AND ${columns.version} = $3`,
        [size, k.objectId, k.version],
      );
    };

  const all: Subject[] = [
    {
      name: 'sqlite-table',
      open: async () => {
        sqlitePath = join(tempDir(), 'objects.sqlite');
        return new SqliteTableStore({ path: sqlitePath, table: 'objects', create: true });
      },
      tamperSize: sqliteSize(() => sqlitePath),
      withNames: ({ table, column }) =>
        new SqliteTableStore({
          path: join(tempDir(), 'x.sqlite'),
          table: table ?? 'objects',
          columns: column ? { size: column } : {},
        }),
    },
    {
      name: 'postgres-table',
      open: () => PostgresTableStore.open({ pool, table: pgTable, create: true }),
      tamperSize: postgresSize(pgTable),
      withNames: ({ table, column }) =>
        new PostgresTableStore({ pool, table: table ?? 'objects', columns: column ? { updatedAt: column } : {} }),
    },
    {
      // someone else's table: other column names, no digest column, and a linguistic collation on the id column
      // (the database's default is C.UTF-8, which would hide a missing COLLATE "C")
      name: 'postgres-table (existing table, ICU collation, sha256 computed in Postgres, stored fingerprints)',
      open: async () => {
        const { rowCount } = await pool.query(`SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu'`);
        const collate = rowCount ? 'COLLATE "und-x-icu"' : '';
        await pool.query(
          `CREATE TABLE "${pgTableNoSha}" (id varchar(200) ${collate} NOT NULL, ver bigint NOT NULL, body bytea NOT NULL, bytes integer NOT NULL, made timestamptz NOT NULL, changed timestamptz NOT NULL, PRIMARY KEY (id, ver))`,
        );
        await pool.query(`INSERT INTO "${pgTableNoSha}" VALUES ('pre-existing', 1, 'x', 1, now(), now())`);
        const columns = {
          objectId: 'id',
          version: 'ver',
          content: 'body',
          size: 'bytes',
          sha256: null,
          createdAt: 'made',
          updatedAt: 'changed',
          fingerprint: 'row_fp',
        };
        // an existing table gets its fingerprint column, trigger and index from installFingerprint() (`runbook dual-write prepare`)
        await expect(PostgresTableStore.open({ pool, table: pgTableNoSha, columns })).rejects.toThrow(
          /fingerprint column "row_fp" does not exist; install it with `npx runbook dual-write prepare/,
        );
        await new PostgresTableStore({ pool, table: pgTableNoSha, columns }).installFingerprint();
        const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${pgTableNoSha}" WHERE row_fp IS NULL`);
        expect(rows[0].n).toBe(0);
        return PostgresTableStore.open({ pool, table: pgTableNoSha, columns });
      },
      tamperSize: postgresSize(pgTableNoSha, { size: 'bytes', objectId: 'id', version: 'ver' }),
    },
    {
      name: 'postgres-table (stored fingerprints)',
      open: () => PostgresTableStore.open({ pool, table: pgTableFp, create: true, columns: { fingerprint: 'fp' } }),
      // behind the adapter's back: the trigger keeps the fingerprint right
      tamperSize: postgresSize(pgTableFp),
    },
    {
      name: 'postgres-table (content by reference)',
      open: () =>
        PostgresTableStore.open({
          pool,
          table: pgTableRef,
          create: true,
          contentReference: { root: join(tempDir(), 'referenced-blobs') },
        }),
      tamperSize: postgresSize(pgTableRef),
    },
    {
      name: 'sqlite-table (stored fingerprints)',
      open: async () => {
        sqliteFpPath = join(tempDir(), 'objects-fp.sqlite');
        return new SqliteTableStore({
          path: sqliteFpPath,
          table: 'objects',
          create: true,
          columns: { fingerprint: 'fp' },
        });
      },
      // behind the adapter's back: the trigger clears the stored fingerprint, which is then computed
      tamperSize: sqliteSize(() => sqliteFpPath),
    },
    {
      name: 'object-store',
      open: () => {
        objectRoot = join(tempDir(), 'object-store');
        return ObjectStore.open(objectRoot);
      },
      tamperSize: sqliteSize(() => join(objectRoot, 'index.sqlite')),
    },
  ];
  const subjects = only ? all.filter((s) => only.includes(s.name)) : all;

  const stores = new Map<SubjectName, ObjectStoreAdapter>();
  beforeAll(async () => {
    for (const s of subjects) stores.set(s.name, await s.open());
  });
  // after hooks run in reverse order (vitest's sequence.hooks 'stack'): this one before the pool ends
  afterAll(async () => {
    for (const s of stores.values()) await s.close();
    for (const table of [pgTable, pgTableNoSha, pgTableFp, pgTableRef])
      await pool.query(`DROP TABLE IF EXISTS "${table}"`);
  });
  return { subjects, stores, store: (name) => stores.get(name)!, postgresTable: pgTable, postgres, tempDir };
}

// ---- data ----

export const T0 = 1_700_000_000_000;

export function object(
  objectId: string,
  version: number,
  content = `content of ${objectId}@${version}`,
  createdAt = T0 + version * 1001,
  updatedAt = createdAt + 999,
): StoredObject {
  const bytes = Buffer.from(content);
  return { objectId, version, content: bytes, size: bytes.length, sha256: sha256(bytes), createdAt, updatedAt };
}

/** Ids whose bytewise (UTF-8, "C") order differs from case-insensitive, locale and UTF-16 orders. */
export const TRICKY_IDS = ['a', 'B', 'a-1', 'a_1', 'é', '~', 'a/b', 'A', 'a b', 'ｚ', '😀', 'e', 'f'];
/** their bytewise order, written out by hand rather than computed with the function under test */
export const TRICKY_ORDER = ['A', 'B', 'a', 'a b', 'a-1', 'a/b', 'a_1', 'e', 'f', 'zero', '~', 'é', 'ｚ', '😀'];

export function trickyObjects(): StoredObject[] {
  const out: StoredObject[] = [];
  TRICKY_IDS.forEach((id, i) => {
    for (const v of [10, 1, 2])
      out.push(object(id, v, `${id}#${v}`, T0 + i * 7919 + v, T0 + i * 7919 + v * 1000 + 999));
  });
  // empty content, epoch 0
  out.push(object('zero', 1, '', 0, 1));
  return out;
}

/** n objects with assorted sizes and timestamps, in a shuffled order */
export function manyObjects(n: number): StoredObject[] {
  const out: StoredObject[] = [];
  for (let i = 0; i < n; i++) {
    const id = `obj-${String((i * 7) % n).padStart(4, '0')}`;
    out.push(
      object(
        id,
        (i % 3) + 1,
        'x'.repeat(i % 17) + i,
        T0 + i * 12_345 + (i % 1000),
        T0 + i * 12_345 + 86_400_000 + (i % 997),
      ),
    );
  }
  return out;
}

export const keyOf = (m: ObjectKey): ObjectKey => ({ objectId: m.objectId, version: m.version });
export const metaOf = ({ content: _content, ...meta }: StoredObject): ObjectMeta => meta;

export async function scanAll(s: ObjectStoreAdapter, range: KeyRange = {}, pageSize = 1000): Promise<ObjectMeta[][]> {
  const pages: ObjectMeta[][] = [];
  for await (const page of s.scan(range, pageSize)) pages.push(page);
  return pages;
}

export async function wipe(s: ObjectStoreAdapter): Promise<void> {
  const rows = (await scanAll(s)).flat();
  await s.delete(rows.map(keyOf));
  expect((await scanAll(s)).flat()).toEqual([]);
}

export const sorted = <T extends ObjectKey>(rows: T[]): T[] => [...rows].sort(compareKeys);

export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the promise to reject');
}
