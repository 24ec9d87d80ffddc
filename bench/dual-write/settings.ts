/**
 * Settings of section 3 (dual-write detection and repair). Knobs (environment): DW_BENCH_OBJECTS (default
 * 1000000), DW_BENCH_DIFF_RUNS (default 3), DW_BENCH_DETECT_BUDGET_S (default 60: a default detection still running
 * then is stopped and reported as partial), DW_BENCH_REPAIR (auto | workflow | activities | skip; default auto, see
 * repair.ts), DW_BENCH_KILL (1 | 0, default 1: the 1 % repair once more, on a third copy of the PG ↔ object store
 * pair, with its worker process SIGKILLed during execute), DW_BENCH_REPAIR_BATCH (default 500) and
 * DW_BENCH_BATCH_PAUSE_MS (default 0). BENCH_SMOKE=1 changes the defaults to 20000 objects, one run, and batches of
 * 20 with a 100 ms pause (so that the kill still lands during the repair of a few hundred objects).
 */
import { DETECTION_DEFAULTS } from '../../src/shared/constants.js';
import { intEnv, SMOKE } from '../support/env.js';
import type { DetectJob } from './job.js';

/** logical objects per case (each side holds all of them but its "missing" drift) */
export const DW_OBJECTS = intEnv('DW_BENCH_OBJECTS', SMOKE ? 20_000 : 1_000_000);
export const DW_DRIFT_LEVELS = [0.001, 0.01, 0.1] as const;
/** the drift level whose cases are also repaired */
export const DW_REPAIR_LEVEL = 0.01;
/** the default detection (bisect) of one case is stopped after this long and reported as partial */
export const DW_DETECT_BUDGET_MS = intEnv('DW_BENCH_DETECT_BUDGET_S', 60) * 1000;
/** the merge and naive variants always finish; this only guards against a hang */
export const DW_OTHER_BUDGET_MS = 600_000;
export const DW_SAMPLE_MS = 50;
/** runs of the default detection per case (fresh child process each); the median is reported */
export const DW_DIFF_RUNS = intEnv('DW_BENCH_DIFF_RUNS', SMOKE ? 1 : 3);
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
/** repair settings (the dual-write target's defaults: batches of 500, 2 at a time, no pause) */
export const DW_REPAIR_BATCH = intEnv('DW_BENCH_REPAIR_BATCH', SMOKE ? 20 : 500);
export const DW_REPAIR_PARALLELISM = 2;
export const DW_BATCH_PAUSE_MS = intEnv('DW_BENCH_BATCH_PAUSE_MS', SMOKE ? 100 : 0, 0);
export const REPAIR_MODE = (process.env.DW_BENCH_REPAIR ?? 'auto') as 'auto' | 'workflow' | 'activities' | 'skip';
if (!['auto', 'workflow', 'activities', 'skip'].includes(REPAIR_MODE))
  throw new Error(`DW_BENCH_REPAIR must be auto, workflow, activities or skip, got ${REPAIR_MODE}`);
/** the real workflow runs two full default detections (detect, verify); auto mode runs it when those fit in this */
export const DW_WORKFLOW_BUDGET_MS = 600_000;
/** the resume measurement: the 1 % repair of a third PG ↔ object store copy, its worker SIGKILLed mid-execute */
export const KILL_RUN = (process.env.DW_BENCH_KILL ?? '1') !== '0';
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

export const PAIRS = [
  { id: 'pg-os', label: 'PG ↔ object store', b: 'object-store' },
  { id: 'pg-sqlite', label: 'PG ↔ SQLite', b: 'sqlite' },
] as const;
export type Pair = (typeof PAIRS)[number];
export type Variant = DetectJob['variant'];
export const VARIANTS: Variant[] = ['diff', 'merge', 'naive'];
export const VARIANT_LABEL: Record<Variant, string> = {
  diff: 'diffStores, defaults (bisect)',
  merge: 'diffStores, `mergeOnly`',
  naive: 'naive: export both, sort, merge',
};
