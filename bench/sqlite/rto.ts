/**
 * Section 5 of `npm run bench`: the emergency restore's RTO, end to end, on the demo database (1 GB; BENCH_SMOKE=1:
 * 30 MB). A copy of the seeded database is the live database of the demo application, its service running and
 * writing; the `sqlite-backup` runbook backs it up (timed, not part of the RTO); after a few more seconds of writes
 * the `sqlite-restore` runbook runs on a real worker (the test Harness's in-process worker, createWorker) against a
 * Temporal dev server (bench/run.ts's, or one of its own), approved as soon as its gate opens. Its RTO phases come
 * from the run's own report (`results.rto`, measureRto), its step times from the result's step records.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import { loadSqliteTarget } from '../../src/activities/sqlite/target.js';
import { writeSqliteEnvironment } from '../../src/demo/sqlite-environment.js';
import { freePort } from '../../src/dev/ports.js';
import { approveSignal } from '../../src/shared/messages.js';
import type { RunbookResult } from '../../src/shared/types.js';
import { bundleWorkflows } from '../../src/worker/worker.js';
import type { RtoReport } from '../../src/workflows/sqlite/rto.js';
import { startRunbook } from '../../test/support/sqlite.js';
import { waitForStatus } from '../../test/support/wait.js';
import { sqliteRtoReport, type SqliteRtoReportInput, type TimedRun } from './rto-report.js';
import { sqliteSection, type SqliteSectionOptions } from './section.js';
import { benchHarness, devServerAddress } from '../support/dev-server.js';
import {
  RTO_MONITOR_WINDOW_S,
  RTO_RUN_BUDGET_MS,
  RTO_WRITE_INTERVAL_MS,
  RTO_WRITES_AFTER_BACKUP_MS,
} from './settings.js';
import { untilIntegrityOk } from './writes.js';

export interface SqliteRtoOptions extends SqliteSectionOptions {
  /** bench/run.ts's dev server; without it the section starts one of its own */
  temporalAddress?: string;
}

export interface SqliteRto extends Omit<SqliteRtoReportInput, 'date' | 'root' | 'load' | 'totalMs'> {
  markdown: string;
}

interface ServiceStats {
  writes: number;
  writeErrors: number;
  tasks: number;
  integrity: { status: string };
}

/** Runs section 5; stops everything it started and removes its files (after a failure too, unless KEEP_BENCH_FILES=1). */
export function runSqliteRto(options: SqliteRtoOptions): Promise<SqliteRto> {
  return sqliteSection('sqlite-rto', options, async ({ log, resources, root, db, date, started, loadAtStart }) => {
    const address = await devServerAddress(options.temporalAddress, root, resources);
    log('bundling the workflows');
    const bundleStarted = Date.now();
    const bundlePath = join(root, 'workflow-bundle.js');
    writeFileSync(bundlePath, await bundleWorkflows());
    const bundleMs = Date.now() - bundleStarted;
    const h = await benchHarness(address, bundlePath, resources);

    const port = await freePort();
    const environment = 'sqlite-rto';
    const dataDir = join(root, 'app');
    const files = writeSqliteEnvironment({
      environmentsDir: h.environmentsDir,
      name: environment,
      dataDir,
      backupsDir: join(root, 'backups'),
      port,
      writeIntervalMs: RTO_WRITE_INTERVAL_MS,
      sqlite: {
        monitor: {
          window: `${RTO_MONITOR_WINDOW_S}s`,
          interval: '1s',
          errorLog: join(dataDir, 'errors.log'),
          pattern: 'ERROR',
        },
      },
    });
    mkdirSync(dataDir, { recursive: true });
    log(`copying the database to ${files.db}`);
    copyFileSync(db.path, files.db);
    const service = (await loadSqliteTarget(h.environmentsDir, { environment, target: 'app' })).services.api!;
    // the runbook stops and starts the service by its pid file; this stop is for a run that fails before it does
    resources.add(() => service.stop().catch(() => undefined));
    await service.start();
    const stats = async (): Promise<ServiceStats> => (await fetch(`http://127.0.0.1:${port}/stats`)).json() as never;
    log('the demo service: waiting for its startup quick_check');
    await untilIntegrityOk(stats);

    log('sqlite-backup');
    const beforeBackup = await stats();
    const backup = await timedRun(() => startRunbook(h, 'sqlite-backup', { environment }));
    const afterBackup = await stats();
    await sleep(RTO_WRITES_AFTER_BACKUP_MS);
    const beforeRestore = await stats();

    log(`sqlite-restore (monitoring window ${RTO_MONITOR_WINDOW_S} s), approved as soon as it waits`);
    const restore = await timedRun(async () => {
      const handle = await startRunbook(h, 'sqlite-restore', { environment, reason: 'benchmark: emergency restore' });
      const status = await waitForStatus(
        handle,
        (s) => Boolean((s.approval.waiting && s.planHash) || s.outcome),
        RTO_RUN_BUDGET_MS,
      );
      if (!status.outcome) await handle.signal(approveSignal, { by: 'alice', planHash: status.planHash! });
      return handle;
    });
    const afterRestore = await stats();
    const rto = restore.result.results?.rto as RtoReport | undefined;
    if (!rto) throw new Error('sqlite-restore: no RTO report in its results');
    const monitorWindowS = RTO_MONITOR_WINDOW_S;
    const writes = {
      duringBackup: afterBackup.writes - beforeBackup.writes,
      afterBackup: beforeRestore.writes - afterBackup.writes,
      // the restored service counts from its own start
      errors: beforeRestore.writeErrors + afterRestore.writeErrors,
    };
    const tasks = { before: beforeRestore.tasks, after: afterRestore.tasks };
    const markdown = sqliteRtoReport({
      date,
      db,
      root,
      backup,
      restore,
      rto,
      writes,
      tasks,
      monitorWindowS,
      bundleMs,
      load: { start: loadAtStart, end: os.loadavg() },
      totalMs: Date.now() - started,
    });
    return { markdown, db, backup, restore, rto, writes, tasks, monitorWindowS, bundleMs };
  });
}

/** Starts a run, waits for its result (terminated after RTO_RUN_BUDGET_MS); fails unless it succeeded. */
async function timedRun(start: () => Promise<WorkflowHandle>): Promise<TimedRun> {
  const started = performance.now();
  const handle = await start();
  const budget = new AbortController();
  const overBudget = sleep(RTO_RUN_BUDGET_MS, undefined, { signal: budget.signal }).then(
    async () => {
      await handle.terminate('benchmark budget exceeded').catch(() => undefined);
      throw new Error(`${handle.workflowId}: not done within ${RTO_RUN_BUDGET_MS / 1000} s`);
    },
    () => undefined, // the run ended first
  );
  let result: RunbookResult;
  try {
    result = (await Promise.race([handle.result(), overBudget])) as RunbookResult;
  } finally {
    budget.abort();
  }
  const ms = performance.now() - started;
  if (result.outcome !== 'succeeded') throw new Error(`${handle.workflowId}: ${result.outcome}`);
  return { result, ms };
}

/** What a smoke run must have shown: both runs succeeded, healthy reached, within the target, the service writing. */
export function sqliteRtoSmokeProblems(bench: SqliteRto): string[] {
  const problems: string[] = [];
  if (bench.rto.totalMs === undefined) problems.push('the restore never reached healthy');
  if (bench.rto.phases.some((p) => p.ms === undefined)) problems.push('an RTO phase has no time');
  if (bench.writes.duringBackup <= 0) problems.push('the service committed nothing during the backup');
  if (bench.writes.errors > 0) problems.push(`${bench.writes.errors} failed writes`);
  if (!(bench.tasks.after > 0)) problems.push('the restored database has no tasks');
  return problems;
}
