/**
 * The cost profile: one of each call detection makes, timed on each store of the first drift level, with the
 * plan the store executes for a segment's sums. Explains where detection time goes (BENCHMARKS.md).
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { ObjectStore } from '../../src/activities/stores/object-store.js';
import { PostgresTableStore } from '../../src/activities/stores/postgres-table.js';
import { SqliteKeyspace } from '../../src/activities/stores/sqlite-keyspace.js';
import { SqliteTableStore } from '../../src/activities/stores/sqlite-table.js';
import type { KeyRange, ObjectStoreAdapter } from '../../src/activities/stores/types.js';
import { timed } from './format.js';
import type { Level } from './seed.js';
import { DIFF_DEFAULTS, FP_COLUMN, PROFILE_FP_SEGMENTS } from './settings.js';

export interface CostProfile {
  store: string;
  rows: number;
  fullSummarizeMs: number;
  /** stepKeys over the whole table, step segmentRows: the keys cutting every window into segments */
  stepKeysMs: number;
  segments: number;
  /** summarizeRanges of one window (windowSegments segments) from the middle of the key space */
  windowSummarizeMs: number;
  windowRows: number;
  /** fingerprintLists() of PROFILE_FP_SEGMENTS segments spread over the key space, in one call */
  fingerprintsMs: number;
  fingerprintRows: number;
  /** one scan page (DIFF_DEFAULTS.pageSize rows) at the start and at 15/16 of the key space */
  firstPageMs: number;
  lastPageMs: number;
  /** how the store executes a segment summary, where the bench can tell */
  planNote?: string;
}

/**
 * One of each call detection makes, timed on one store: the whole-table summary (for scale), the key steps
 * of every window, one window's summaries, the fingerprint lists of spread segments, and scan pages (merge).
 * The segment boundaries are the store's own stepKeys (each store is profiled alone).
 */
async function costProfile(
  name: string,
  store: ObjectStoreAdapter,
  aroundWindow?: <T>(work: () => Promise<T>) => Promise<{ value: T; note: string }>,
): Promise<CostProfile> {
  const full = await timed(() => store.summarize!({}));
  const rows = full.value.count;
  const steps = await timed(() =>
    store.stepKeys!({}, DIFF_DEFAULTS.segmentRows, Math.ceil(rows / DIFF_DEFAULTS.segmentRows) + 1),
  );
  const keys = steps.value;
  const segment = (i: number): KeyRange => ({ from: i === 0 ? undefined : keys[i - 1], to: keys[i] });
  // one window of segments from the middle of the key space
  const start = Math.max(0, Math.floor(keys.length / 2) - Math.floor(DIFF_DEFAULTS.windowSegments / 2));
  const windowRanges: KeyRange[] = [];
  for (let i = start; i < Math.min(keys.length, start + DIFF_DEFAULTS.windowSegments); i++)
    windowRanges.push(segment(i));
  const summarizeWindow = () => timed(() => store.summarizeRanges!(windowRanges));
  let planNote: string | undefined;
  let window: Awaited<ReturnType<typeof summarizeWindow>>;
  if (aroundWindow) {
    const r = await aroundWindow(summarizeWindow);
    window = r.value;
    planNote = r.note;
  } else window = await summarizeWindow();
  // spread segments, as the differing segments of 0.1 % drift (one every ~1000 rows) are spread
  const spread: KeyRange[] = [];
  const every = Math.max(1, Math.floor(keys.length / PROFILE_FP_SEGMENTS));
  for (let i = 0; i < keys.length && spread.length < PROFILE_FP_SEGMENTS; i += every) spread.push(segment(i));
  const fps = await timed(() => store.fingerprintLists!(spread));
  const firstPage = await timed(async () => {
    for await (const _page of store.scan({}, DIFF_DEFAULTS.pageSize)) break;
  });
  const lastFrom = keys[Math.floor((keys.length * 15) / 16)];
  const lastPage = await timed(async () => {
    for await (const _page of store.scan({ from: lastFrom }, DIFF_DEFAULTS.pageSize)) break;
  });
  return {
    store: name,
    rows,
    fullSummarizeMs: full.ms,
    stepKeysMs: steps.ms,
    segments: keys.length + 1,
    windowSummarizeMs: window.ms,
    windowRows: window.value.reduce((n, s) => n + s.count, 0),
    fingerprintsMs: fps.ms,
    fingerprintRows: fps.value.reduce((n, list) => n + (list ? list.split(',').length : 0), 0),
    firstPageMs: firstPage.ms,
    lastPageMs: lastPage.ms,
    planNote,
  };
}

/** Sequential and index scans of a Postgres table during `work` (pg_stat_user_tables; the pool must have one connection), and the plan of one segment summary. */
function countScans(pool: pg.Pool, table: string) {
  return async <T>(work: () => Promise<T>): Promise<{ value: T; note: string }> => {
    const read = async () => {
      // PG ≥ 15: make this backend's (and its finished parallel workers') counters visible now
      await pool.query('SELECT pg_stat_force_next_flush()').catch(() => undefined);
      await pool.query('SELECT 1');
      const r = await pool.query<{ seq: string; idx: string }>(
        'SELECT seq_scan AS seq, idx_scan AS idx FROM pg_stat_user_tables WHERE relname = $1',
        [table],
      );
      return { seq: Number(r.rows[0]?.seq ?? NaN), idx: Number(r.rows[0]?.idx ?? NaN) };
    };
    const before = await read();
    const value = await work();
    const after = await read();
    // the bounded-range condition PostgresTableStore.perRange builds, for one segment in the middle
    const t = pg.escapeIdentifier(table);
    const plan = await pool.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN SELECT count(*), sum((fp >> 32)::int), sum(((fp << 32) >> 32)::int) FROM ${t}
       WHERE (object_id, version) >= ('obj-00500000', 1) AND object_id >= 'obj-00500000' AND (object_id, version) < ('obj-00500064', 1) AND object_id <= 'obj-00500064'`,
    );
    const access = plan.rows.map((r) => r['QUERY PLAN'].trim()).find((l) => /Scan/.test(l)) ?? '?';
    return {
      value,
      note: `one window's summaries: ${after.seq - before.seq} sequential scans, ${after.idx - before.idx} index scans of the table (pg_stat_user_tables); EXPLAIN of one segment's sums: ${access.replace(/\s+\(cost=.*$/, '')}`,
    };
  };
}

/** EXPLAIN QUERY PLAN of one segment's sums, with the WHERE clause SqliteKeyspace itself builds. */
function sqliteRangePlan(path: string, table: string, quote: boolean): string {
  const db = new Database(path);
  try {
    const q = (c: string) => (quote ? `"${c}"` : c);
    const keyspace = new SqliteKeyspace(db, {
      table: q(table),
      objectId: q('object_id'),
      version: q('version'),
      sha256: q('sha256'),
      size: q('size'),
      createdAt: q('created_at'),
      updatedAt: q('updated_at'),
      fingerprint: q(FP_COLUMN),
    });
    const params: unknown[] = [];
    const where = keyspace.where(
      { from: { objectId: 'obj-00500000', version: 1 }, to: { objectId: 'obj-00500064', version: 1 } },
      params,
    );
    const fp = q(FP_COLUMN);
    const plan = db
      .prepare(
        `EXPLAIN QUERY PLAN SELECT count(*), sum(${fp} >> 32), sum((${fp} << 32) >> 32), count(${fp}) FROM ${q(table)} WHERE ${where}`,
      )
      .all(...params) as Array<{ detail: string }>;
    return `EXPLAIN QUERY PLAN of one segment's sums (\`WHERE ${where}\`): ${plan.map((p) => p.detail).join('; ')}`;
  } finally {
    db.close();
  }
}

/** The profile of the level's Postgres table, object store index and SQLite table (of its first cases). */
export async function profileStores(pgUrl: string, lv: Level): Promise<CostProfile[]> {
  const osCase = lv.cases.find((c) => c.b.type === 'object-store')!;
  const osRoot = (osCase.b as { root: string }).root;
  const sqlitePath = (lv.cases.find((c) => c.b.type === 'sqlite')!.b as { path: string }).path;
  const profiles: CostProfile[] = [];
  // one connection: the scans counted are this profile's own
  const pool = new pg.Pool({ connectionString: pgUrl, max: 1 });
  pool.on('error', () => {});
  try {
    profiles.push(
      await costProfile(
        'Postgres table',
        new PostgresTableStore({ pool, table: osCase.a.table, columns: { fingerprint: FP_COLUMN } }),
        countScans(pool, osCase.a.table),
      ),
    );
    const o = new ObjectStore({ root: osRoot });
    profiles.push({
      ...(await costProfile('object store index (SQLite)', o)),
      planNote: sqliteRangePlan(join(osRoot, 'index.sqlite'), 'objects', false),
    });
    await o.close();
    const s = new SqliteTableStore({ path: sqlitePath, table: 'objects', columns: { fingerprint: FP_COLUMN } });
    profiles.push({
      ...(await costProfile('SQLite table', s)),
      planNote: sqliteRangePlan(sqlitePath, 'objects', true),
    });
    await s.close();
  } finally {
    await pool.end();
  }
  return profiles;
}
