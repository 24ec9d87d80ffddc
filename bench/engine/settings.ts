/**
 * Settings of sections 1 and 2 of `npm run bench`, shared by the runner (overhead.ts, resume.ts), the bench worker
 * (worker.ts, worker-child.ts) and the bench workflows (workflows.ts). Plain constants only: this module is bundled
 * into workflow code (which has no environment: BENCH_SMOKE's run counts are in overhead.ts and resume.ts).
 */

/** Engine overhead: steps per workflow, runs per variant (after the warm-up), and the target. */
export const OVERHEAD_STEPS = 20;
export const OVERHEAD_WARMUP_RUNS = 1;
export const OVERHEAD_RUNS = 5;
export const STEP_TARGET_MS = 30;

/** The no-op activity's timeout. */
export const NOOP_START_TO_CLOSE_TIMEOUT = '10s';

/** Resume after SIGKILL: the heartbeating step sleeps SLEEP_MS, heartbeating every HEARTBEAT_EVERY_MS. */
export const RESUME_RUNS = 3;
export const SLEEP_MS = 3000;
export const HEARTBEAT_EVERY_MS = 500;
export const HEARTBEAT_TIMEOUT = '2s';
export const HEARTBEAT_TIMEOUT_MS = 2000;
/** the retry policy of the heartbeating step: the same backoff as the project's verify steps (feature-flag-rollback.ts) */
export const SLEEP_RETRY = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '20s',
  maximumAttempts: 5,
} as const;
export const SLEEP_RETRY_INITIAL_INTERVAL_MS = 1000;
/** the server must have recorded a heartbeat this far into the step before the worker is killed */
export const KILL_AFTER_PROGRESS_MS = 1000;
/** Target: the interrupted step runs again within this plus the heartbeat timeout of the new worker's spawn. */
export const RESUME_TARGET_EXTRA_MS = 2000;

/** Mirrors src/worker/worker.ts (createWorker); worker.ts checks that the two still agree. */
export const STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT = '2s';
export const SHUTDOWN_GRACE_TIME = '10s';
