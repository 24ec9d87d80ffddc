/**
 * `npm run bench`: engine overhead (bench/engine/overhead.ts) and resume-after-SIGKILL latency
 * (bench/engine/resume.ts) against a Temporal dev server this script starts (free port, headless, in-memory) and
 * stops, and then against a Temporal cluster (bench/engine/cluster.ts: src/dev/cluster.ts's services in processes of
 * their own on PostgreSQL; BENCH_SKIP_CLUSTER=1 skips it), started for them and stopped right after; then dual-write drift detection and repair at 1M objects (bench/dual-write/, which starts its own Postgres);
 * then backup + verify of a 1 GB SQLite database (bench/sqlite/), then the emergency restore's RTO on it
 * (bench/sqlite/rto.ts), then the missed-job replay of 10,000 jobs (bench/replay/). Prints Markdown and rewrites the results blocks of BENCHMARKS.md. Every process it starts is
 * stopped at the end, on error, on Ctrl-C, and when the time budget runs out. BENCH_SKIP_DUAL_WRITE=1 skips section 3,
 * BENCH_SKIP_SQLITE=1 section 4, BENCH_SKIP_SQLITE_RTO=1 section 5, BENCH_SKIP_REPLAY=1 section 6; BENCH_SMOKE=1 runs every section small, without
 * writing BENCHMARKS.md.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';
import { freePort } from '../src/dev/ports.js';
import { startDevServer } from '../src/dev/temporal-server.js';
import { workflowInterceptorModules } from '../src/worker/worker.js';
import { writeEnvironment } from '../test/support/environments.js';
import { runDualWriteBench, smokeProblems } from './dual-write/index.js';
import { runIncrementalBench } from './dual-write/incremental.js';
import { benchEngine, benchEngineOnCluster } from './engine/cluster.js';
import { engineReport } from './engine/report.js';
import { BENCH_ENVIRONMENT, BENCH_TARGET, checkStickyTimeout } from './engine/worker.js';
import { connectEngineWorld } from './engine/world.js';
import { SEED_FOLDER, seedDirFor } from './sqlite/database.js';
import { runSqliteBench, sqliteSmokeProblems } from './sqlite/index.js';
import { runSqliteRto, sqliteRtoSmokeProblems } from './sqlite/rto.js';
import { replaySmokeProblems, runReplayBench } from './replay/index.js';
import {
  benchmarksFile,
  formatBenchmarksFile,
  writeDualWriteResults,
  writeDualWriteIncrementalResults,
  writeEngineResults,
  writeSqliteResults,
  writeSqliteRtoResults,
  writeReplayResults,
} from './support/benchmarks-file.js';
import { SMOKE } from './support/env.js';
import { machine, runDate } from './support/machine.js';
import { Resources, runMain } from './support/resources.js';
import { installQuietRuntime } from './support/runtime.js';

/**
 * sections 1 and 2 take about a minute, section 3 (dual-write, 1M objects) about six to seven, section 4 (SQLite,
 * 1 GB) about nine, section 5 (restore RTO, 1 GB) about two to three, section 6 (replay, 10,000 jobs) two to three
 */
const BUDGET_MS = 30 * 60_000;
const SKIP_CLUSTER = process.env.BENCH_SKIP_CLUSTER === '1';
const SKIP_DUAL_WRITE = process.env.BENCH_SKIP_DUAL_WRITE === '1';
const DEV_SERVER =
  '`temporal server start-dev` (its services in one process, 1 history shard, SQLite in memory), headless, on a free port, started by the bench';
const SKIP_SQLITE = process.env.BENCH_SKIP_SQLITE === '1';
const SKIP_SQLITE_RTO = process.env.BENCH_SKIP_SQLITE_RTO === '1';
const SKIP_REPLAY = process.env.BENCH_SKIP_REPLAY === '1';
const workflowsPath = fileURLToPath(new URL('engine/workflows.ts', import.meta.url));
const log = (message: string): void => void process.stderr.write(`[bench] ${message}\n`);

const resources = new Resources();
/** the run's temp dir (bundle, evidence, logs): removed after a successful run, kept otherwise */
let root: string | undefined;

async function main(): Promise<void> {
  const warnings: string[] = [];
  const stickyMismatch = checkStickyTimeout();
  if (stickyMismatch) warnings.push(stickyMismatch);
  const date = runDate();
  root = mkdtempSync(join(os.tmpdir(), 'durable-runbooks-bench-'));
  const evidenceDir = join(root, 'evidence');
  mkdirSync(evidenceDir, { recursive: true });
  // the bench workflows run on target bench/noop: the engine takes its lock like any runbook's
  const environmentsDir = join(root, 'environments');
  writeEnvironment(environmentsDir, {
    name: BENCH_ENVIRONMENT,
    targets: { [BENCH_TARGET]: { description: 'no-op steps' } },
  });
  let ok = false;
  try {
    installQuietRuntime();
    if (SMOKE) log('BENCH_SMOKE=1: every section at a small size; BENCHMARKS.md is not written');
    log(`starting a dev server and bundling ${workflowsPath}`);
    const bundleStarted = Date.now();
    const [port, bundle] = await Promise.all([
      freePort(),
      bundleWorkflowCode({
        workflowsPath,
        workflowInterceptorModules,
        logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
      }).then((b) => ({ ...b, ms: Date.now() - bundleStarted })),
    ]);
    const bundlePath = join(root, 'workflow-bundle.js');
    writeFileSync(bundlePath, bundle.code);
    const server = await startDevServer({ port, logFile: join(root, 'temporal.log') });
    resources.add(
      () => server.stop(),
      () => server.process.kill('SIGKILL'),
    );
    log(`dev server on ${server.address}`);
    const base = { bundlePath, environmentsDir, evidenceDir, root, resources, log };
    const servers = [await benchEngine(await connectEngineWorld(server.address, base), 'dev server', DEV_SERVER)];
    if (SKIP_CLUSTER) log('1 and 2 on a Temporal cluster: skipped (BENCH_SKIP_CLUSTER=1)');
    else {
      log('1 and 2 on a Temporal cluster (src/dev/cluster.ts), started now and stopped after');
      servers.push(await benchEngineOnCluster(base));
    }
    const section = engineReport(machine(), date, bundle.ms, servers, warnings);
    process.stdout.write(`${section}\n`);
    if (!SMOKE) {
      writeEngineResults(section);
      log(`wrote ${benchmarksFile}`);
    }

    if (SKIP_DUAL_WRITE) log('3. dual-write detection: skipped (BENCH_SKIP_DUAL_WRITE=1)');
    else {
      log(`3. dual-write detection${SMOKE ? '' : ' (1M objects per case; about six to seven minutes)'}`);
      const dualWrite = await runDualWriteBench({
        temporalAddress: server.address,
        resources,
        log: (message) => log(`dual-write: ${message}`),
      });
      sectionDone('dual-write', dualWrite.markdown, () => smokeProblems(dualWrite), writeDualWriteResults);
      log(`3b. dual-write incremental re-check${SMOKE ? '' : ' (1M objects; about three minutes)'}`);
      const incremental = await runIncrementalBench({ resources, log: (message) => log(`dw-incremental: ${message}`) });
      sectionDone(
        'dual-write incremental',
        incremental.markdown,
        () => incremental.problems,
        writeDualWriteIncrementalResults,
      );
    }

    if (SKIP_SQLITE) log('4. SQLite backup: skipped (BENCH_SKIP_SQLITE=1)');
    else {
      log(`4. SQLite backup${SMOKE ? '' : ' (a 1 GB database; about nine minutes)'}`);
      const sqlite = await runSqliteBench({
        resources,
        seedDir: seedDirFor(root),
        log: (message) => log(`sqlite: ${message}`),
      });
      sectionDone('SQLite', sqlite.markdown, () => sqliteSmokeProblems(sqlite), writeSqliteResults);
    }
    if (SKIP_SQLITE_RTO) log('5. SQLite emergency restore RTO: skipped (BENCH_SKIP_SQLITE_RTO=1)');
    else {
      log(`5. SQLite emergency restore RTO${SMOKE ? '' : ' (the 1 GB database; about two to three minutes)'}`);
      const rto = await runSqliteRto({
        resources,
        temporalAddress: server.address,
        seedDir: seedDirFor(root),
        log: (message) => log(`sqlite-rto: ${message}`),
      });
      sectionDone('SQLite restore RTO', rto.markdown, () => sqliteRtoSmokeProblems(rto), writeSqliteRtoResults);
    }
    if (SKIP_REPLAY) log('6. missed-job replay: skipped (BENCH_SKIP_REPLAY=1)');
    else {
      log(`6. missed-job replay${SMOKE ? '' : ' (10,000 jobs; about two and a half minutes)'}`);
      const replay = await runReplayBench({
        resources,
        temporalAddress: server.address,
        log: (message) => log(`replay: ${message}`),
      });
      sectionDone('missed-job replay', replay.markdown, () => replaySmokeProblems(replay), writeReplayResults);
    }
    if (SMOKE) log('smoke run: every section ran (the numbers above are not results)');
    ok = true;
  } finally {
    await resources.stop();
    // the sections written so far, even when a later one failed
    if (!SMOKE) await formatBenchmarksFile();
    if (ok) rmSync(root, { recursive: true, force: true });
    else {
      rmSync(join(root, SEED_FOLDER), { recursive: true, force: true }); // the SQLite sections' seed: a gigabyte, no log
      log(`logs kept in ${root}`);
    }
  }
}

/** Prints a section's Markdown; a smoke run fails on the section's problems, a real one rewrites its block. */
function sectionDone(name: string, markdown: string, problems: () => string[], write: (markdown: string) => void) {
  process.stdout.write(`\n${markdown}\n`);
  if (SMOKE) {
    const found = problems();
    if (found.length) throw new Error(`smoke run: ${name}: ${found.join('; ')}`);
  } else {
    write(markdown);
    log(`wrote the ${name} section of ${benchmarksFile}`);
  }
}

runMain('bench', main, resources, {
  budgetMs: BUDGET_MS,
  note: () => (root ? `logs kept in ${root}` : undefined),
});
