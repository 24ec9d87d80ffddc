/**
 * Settings of section 4 (SQLite backup). Knobs (environment): SQLITE_BENCH_BYTES (the demo database's size, default
 * 1,000,000,000; BENCH_SMOKE=1: 30,000,000), SQLITE_BENCH_COPY_RUNS (runs of each copy alone, default 3; smoke 1),
 * SQLITE_BENCH_ACTIVITIES_RUNS (end-to-end runs of each configuration of the activities, default 2; smoke 1),
 * SQLITE_BENCH_WRITE_INTERVAL_MS (the demo service's write interval under concurrent writes, default 5) and
 * SQLITE_BENCH_SEED_DIR (where the seeded database is kept and reused across runs; default: the run's temp dir).
 */
import { intEnv, SMOKE } from '../support/env.js';

export const SQLITE_BENCH_BYTES = intEnv('SQLITE_BENCH_BYTES', SMOKE ? 30_000_000 : 1_000_000_000, 1_000_000);
/** each copy alone runs this many times (after a warm-up read of the source); the median is reported */
export const COPY_RUNS = intEnv('SQLITE_BENCH_COPY_RUNS', SMOKE ? 1 : 3);
/** runs of each configuration of the activities end to end (interleaved; the median decides); other alternatives run once */
export const ACTIVITIES_RUNS = intEnv('SQLITE_BENCH_ACTIVITIES_RUNS', SMOKE ? 1 : 2);
/** a configuration replaces the schema's default only when it is faster end to end by more than this share */
export const DECISION_MARGIN = 0.1;
/** gzip levels tried by the activities' pipeline */
export const GZIP_LEVELS = [1, 6] as const;
/** pages per step of the backup API on the main thread: better-sqlite3's default (100) and ten times that */
export const STEP_PAGES = [100, 1000] as const;
/** the demo service writes one transaction every this many ms during the concurrent-writes runs */
export const WRITE_INTERVAL_MS = intEnv('SQLITE_BENCH_WRITE_INTERVAL_MS', 5);
/** the service writes this long before a backup starts under writes (its WAL in use) */
export const WRITES_SETTLE_MS = 2000;
/** a stepped backup under writes is given up after max(this, STEPPED_BUDGET_FACTOR × its quiet copy time) */
export const STEPPED_BUDGET_MIN_MS = SMOKE ? 5_000 : 20_000;
export const STEPPED_BUDGET_FACTOR = 3;
/** the pause probe's timer interval: a pause is a gap between its ticks, less this */
export const PROBE_INTERVAL_MS = 1;
/** the probe on an idle bench process this long: the pauses the machine itself causes (the baseline of the pauses) */
export const IDLE_PROBE_MS = SMOKE ? 1000 : 10_000;

export const GOALS = {
  /** backup + verify throughput over cp's throughput of the same file */
  ratioToCp: 0.8,
  /** the longest event-loop pause of the process running the backup */
  pauseMs: 50,
};

/**
 * Section 5 (emergency restore RTO, rto.ts). Knobs: SQLITE_RTO_MONITOR_WINDOW_S (the environment's monitoring window,
 * default 10 s; the runbook's input may only lengthen it) and SQLITE_RTO_WRITE_INTERVAL_MS (the demo service's write
 * interval while it runs, default 50: the demo environment's).
 */
export const RTO_MONITOR_WINDOW_S = intEnv('SQLITE_RTO_MONITOR_WINDOW_S', SMOKE ? 3 : 10);
export const RTO_WRITE_INTERVAL_MS = intEnv('SQLITE_RTO_WRITE_INTERVAL_MS', 50);
/** the service writes this long between the backup and the restore (writes the restore will lose) */
export const RTO_WRITES_AFTER_BACKUP_MS = 3000;
/** the goal and the seed's target for start → healthy */
export const RTO_GOAL_MS = 2 * 60_000;
/** a run (backup or restore) is terminated after this long */
export const RTO_RUN_BUDGET_MS = 15 * 60_000;
