/**
 * The stores of one drift level: a Postgres table per case (side A) and an object store index or a SQLite table
 * (side B), all filled by one seedDrift pass with the same objects and the same injected drift, every row with its
 * stored fingerprint, as the runbook ships them. Dropped after the level.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { DRIFT_CLASSES, type DriftClass } from '../../src/activities/stores/diff.js';
import { rowFingerprint } from '../../src/activities/stores/fingerprint.js';
import { ObjectStore } from '../../src/activities/stores/object-store.js';
import { PostgresTableStore } from '../../src/activities/stores/postgres-table.js';
import { SqliteTableStore } from '../../src/activities/stores/sqlite-table.js';
import type { ObjectStoreAdapter, StoredObject } from '../../src/activities/stores/types.js';
import { seedDrift, type InjectedDrift } from '../../src/demo/seed-drift.js';
import { fmtInt, fmtMs, pct, timed } from './format.js';
import type { SideSpec } from './job.js';
import { DW_OBJECTS, FP_COLUMN, PAIRS, type Pair } from './settings.js';

export interface CaseStores {
  pair: Pair;
  a: SideSpec & { type: 'postgres' };
  b: SideSpec;
  /** environment (dual-write target `objects`) describing this pair, for the activities and the workflow */
  environment: string;
  workDir: string;
}

export interface Level {
  level: number;
  /** its directory: SQLite files, object stores, work dirs, detection output */
  dir: string;
  /** injected objects per drift class */
  perClass: number;
  repairing: boolean;
  /** one case per pair */
  cases: CaseStores[];
  /** a third copy of the PG ↔ object store pair, for the kill run (the first one is repaired uninterrupted) */
  killCase?: CaseStores;
  all: CaseStores[];
}

export interface LevelSeed {
  level: number;
  injected: number;
  seedMs: number;
  vacuumMs: number;
  blobsMs?: number;
  blobs?: number;
  /** stores seeded in the pass */
  stores: number;
}

/** Where the cases of a drift level live (nothing is created yet). */
export function planLevel(level: number, root: string, tablePrefix: string, repairing: boolean, kill: boolean): Level {
  const tag = String(level).replace('0.', 'p');
  const dir = join(root, tag);
  const caseOf = (pair: Pair, id: string): CaseStores => ({
    pair,
    a: { type: 'postgres', table: `${tablePrefix}_${tag}_${id.replaceAll('-', '_')}`, fingerprint: FP_COLUMN },
    b:
      pair.b === 'sqlite'
        ? { type: 'sqlite', path: join(dir, `side-b-${id}.sqlite`), table: 'objects', fingerprint: FP_COLUMN }
        : { type: 'object-store', root: join(dir, `object-store-${id}`) },
    environment: `dwbench-${id}-${tag}`,
    workDir: join(dir, `work-${id}`),
  });
  const cases = PAIRS.map((pair) => caseOf(pair, pair.id));
  const killCase = repairing && kill ? caseOf(PAIRS[0], `${PAIRS[0].id}-kill`) : undefined;
  return {
    level,
    dir,
    perClass: Math.round((DW_OBJECTS * level) / DRIFT_CLASSES.length),
    repairing,
    cases,
    killCase,
    all: killCase ? [...cases, killCase] : cases,
  };
}

/** An adapter that only takes puts (seeding). */
const putOnly = (
  describe: string,
  put: (objects: StoredObject[]) => Promise<void>,
  close: () => Promise<void>,
): ObjectStoreAdapter => ({
  describe: () => describe,
  scan: () => {
    throw new Error('seeding adapter: put only');
  },
  get: async () => [],
  getMeta: async () => [],
  put,
  delete: async () => {},
  close,
});

/** Puts into several stores at once: one seedDrift pass seeds every pair of a drift level with the same objects. */
const tee = (stores: ObjectStoreAdapter[]): ObjectStoreAdapter =>
  putOnly(
    stores.map((s) => s.describe()).join(' + '),
    async (objects) => void (await Promise.all(stores.map((s) => s.put(objects)))),
    async () => void (await Promise.all(stores.map((s) => s.close()))),
  );

/**
 * Seeds an object store's index (index.sqlite, schema, invalidation trigger and covering index created by
 * ObjectStore itself) with the objects' metadata rows and their stored fingerprint (`fp` = rowFingerprint(), as
 * ObjectStore.put writes it; a NULL there would be computed per row at comparison time), without writing blobs:
 * ObjectStore.put writes and fsyncs one blob file per distinct content (about 600 objects/s here, half an hour
 * per million), and detection reads the index only. The blobs the repair reads are written afterwards
 * (writeBlobs). An upsert, as put().
 */
export async function objectIndexSeeder(root: string): Promise<ObjectStoreAdapter> {
  await (await ObjectStore.open(root)).close();
  const db = new Database(join(root, 'index.sqlite'));
  db.pragma('synchronous = OFF');
  const insert = db.prepare(
    `INSERT INTO objects (object_id, version, sha256, size, created_at, updated_at, fp) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (object_id, version) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size, created_at = excluded.created_at, updated_at = excluded.updated_at, fp = excluded.fp`,
  );
  const putAll = db.transaction((objects: StoredObject[]) => {
    for (const o of objects)
      insert.run(o.objectId, o.version, o.sha256, o.size, o.createdAt, o.updatedAt, rowFingerprint(o));
  });
  return putOnly(
    `object store index ${root}`,
    async (objects) => putAll(objects),
    async () => {
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
    },
  );
}

/** Writes the blobs of B's objects that the repair reads (every injected key present on B), content-addressed. */
async function writeBlobs(root: string, keeper: ObjectStoreAdapter, injected: InjectedDrift[]): Promise<number> {
  const store = new ObjectStore({ root });
  const keys = injected.filter((d) => d.class !== 'missing_in_b');
  let written = 0;
  try {
    for (let i = 0; i < keys.length; i += 1000) {
      for (const o of await keeper.get(keys.slice(i, i + 1000))) {
        const path = store.blobPath(o.sha256);
        if (existsSync(path)) continue;
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, o.content);
        written++;
      }
    }
  } finally {
    await store.close();
  }
  return written;
}

/** Rows without a stored fingerprint in every store of the level (a NULL is computed per row at comparison time: not what is measured). */
async function missingFingerprints(pool: pg.Pool, lv: Level): Promise<number> {
  let missing = 0;
  for (const c of lv.all) {
    const r = await pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${pg.escapeIdentifier(c.a.table)} WHERE ${pg.escapeIdentifier(FP_COLUMN)} IS NULL`,
    );
    missing += Number(r.rows[0]!.n);
  }
  for (const c of lv.all) {
    const path = c.b.type === 'object-store' ? join(c.b.root, 'index.sqlite') : c.b.type === 'sqlite' ? c.b.path : '';
    const db = new Database(path, { readonly: true });
    missing += (db.prepare(`SELECT count(*) AS n FROM objects WHERE ${FP_COLUMN} IS NULL`).get() as { n: number }).n;
    db.close();
  }
  return missing;
}

/** Creates and fills every store of the level in one seedDrift pass; returns the injected drift. */
export async function seedLevel(
  pool: pg.Pool,
  lv: Level,
  log: (message: string) => void,
): Promise<{ injected: InjectedDrift[]; seed: LevelSeed }> {
  mkdirSync(lv.dir, { recursive: true });
  log(
    `${pct(lv.level)} drift: seeding ${fmtInt(DW_OBJECTS)} objects into ${lv.all.length} pairs (${fmtInt(lv.perClass)} per drift class)`,
  );
  // create: the table, the fingerprint column, its trigger (fills fp on every insert) and the covering index
  const tables = lv.all.map(
    (c) => new PostgresTableStore({ pool, table: c.a.table, create: true, columns: { fingerprint: FP_COLUMN } }),
  );
  for (const t of tables) await t.init();
  const osRoots = lv.all.flatMap((c) => (c.b.type === 'object-store' ? [c.b.root] : []));
  const sqlitePaths = lv.all.flatMap((c) => (c.b.type === 'sqlite' ? [c.b.path] : []));
  const indexSeeders = await Promise.all(osRoots.map((r) => objectIndexSeeder(r)));
  const sqliteSides = sqlitePaths.map(
    (path) => new SqliteTableStore({ path, table: 'objects', create: true, columns: { fingerprint: FP_COLUMN } }),
  );
  // the repair reads the object store's blobs of the objects it touches: keep B's contents aside to write them
  const keeperPath = join(lv.dir, 'b-contents.sqlite');
  const keeper = lv.repairing ? new SqliteTableStore({ path: keeperPath, table: 'objects', create: true }) : undefined;
  const drift = Object.fromEntries(DRIFT_CLASSES.map((c) => [c, lv.perClass])) as Record<DriftClass, number>;
  const seeded = await timed(() =>
    seedDrift(tee(tables), tee([...indexSeeders, ...sqliteSides, ...(keeper ? [keeper] : [])]), {
      objects: DW_OBJECTS,
      drift,
      newer: 'a',
      batch: 5000,
    }),
  );
  const injected = seeded.value;
  for (const seeder of indexSeeders) await seeder.close();
  for (const side of sqliteSides) await side.close();
  const vacuum = await timed(async () => {
    for (const c of lv.all) await pool.query(`VACUUM ANALYZE ${pg.escapeIdentifier(c.a.table)}`);
  });
  const missing = await missingFingerprints(pool, lv);
  if (missing) throw new Error(`${missing} seeded rows have no stored fingerprint`);
  const seed: LevelSeed = {
    level: lv.level,
    injected: injected.length,
    seedMs: seeded.ms,
    vacuumMs: vacuum.ms,
    stores: tables.length + indexSeeders.length + sqliteSides.length,
  };
  if (keeper) {
    const wrote = await timed(async () => {
      let n = 0;
      for (const r of osRoots) n += await writeBlobs(r, keeper, injected);
      return n;
    });
    seed.blobsMs = wrote.ms;
    seed.blobs = wrote.value;
    await keeper.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${keeperPath}${suffix}`, { force: true });
  }
  log(
    `seeded in ${fmtMs(seeded.ms)} (+ VACUUM ANALYZE ${fmtMs(vacuum.ms)}${seed.blobsMs !== undefined ? `, ${seed.blobs} blobs ${fmtMs(seed.blobsMs)}` : ''})`,
  );
  return { injected, seed };
}

/** Drops the level's tables and removes its files. */
export async function dropLevel(pool: pg.Pool, lv: Level): Promise<void> {
  for (const c of lv.all) await pool.query(`DROP TABLE IF EXISTS ${pg.escapeIdentifier(c.a.table)}`);
  rmSync(lv.dir, { recursive: true, force: true });
}
