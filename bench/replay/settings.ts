import { SMOKE, intEnv } from '../support/env.js';

/** Section 6's knobs (BENCH_SMOKE=1: small). */
export const REPLAY_JOBS = SMOKE ? 1000 : intEnv('BENCH_REPLAY_JOBS', 10_000);
/** the environment's replay section for both runs: unpaced, large batches */
export const REPLAY_SETTINGS = { batch: SMOKE ? 100 : 2500, concurrency: 4, pace: '0s' } as const;
/** rounds of (a): each times the runbook, the direct loop, the durable and checked direct loops and the job source alone once */
export const ROUNDS = SMOKE ? 1 : 3;
/** jobs for the seed's own script (two processes per job: a sample is enough for its rate) */
export const SEED_SCRIPT_JOBS = SMOKE ? 100 : 1000;
/** the kill run: SIGKILL the worker when this share of the jobs is requeued */
export const KILL_AT = [0.25, 0.5, 0.75];
/** the processor's own concurrency and per-job work in the kill run */
export const PROCESSOR = { concurrency: 8, workMs: 1 };
/** a run that takes longer is terminated (and the section fails) */
export const RUN_BUDGET_MS = 10 * 60_000;
