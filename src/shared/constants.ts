/** Defaults shared by the worker, the CLI, the demo and docker-compose.yml. */
export const DEFAULT_TEMPORAL_ADDRESS = 'localhost:7233';
export const DEFAULT_NAMESPACE = 'default';
export const DEFAULT_TASK_QUEUE = 'durable-runbooks';
export const DEFAULT_METRICS_PORT = 9464;

/** Custom search attributes (all Keyword) registered on the dev server by our scripts. */
export const SEARCH_ATTRIBUTES = ['RunbookName', 'Environment', 'Target', 'Outcome'] as const;

/**
 * Every failure type the runbooks raise, matched by name in retry policies and tests. Use these, never string
 * literals.
 */
export const ErrorType = {
  /** runbook input (workflow arguments, CLI flags) is malformed or loosens the environment's policy */
  InvalidInput: 'InvalidInput',
  /** an environment file is missing, malformed or lacks what the runbook needs */
  EnvironmentInvalid: 'EnvironmentInvalid',
  /** an external command or name was refused before running */
  CommandRefused: 'CommandRefused',
  /** a check after a change did not hold */
  VerificationFailed: 'VerificationFailed',
  /** the target changed since the plan was approved */
  PlanStale: 'PlanStale',
  /** a work file's digest differs from the one the workflow recorded */
  EvidenceMismatch: 'EvidenceMismatch',
  /** a work file is not on this worker's host (retryable: another worker may have it) */
  WorkFileMissing: 'WorkFileMissing',
  /** a digest read from a store or file is not 64 lowercase hex characters */
  InvalidDigest: 'InvalidDigest',
  /** the caller is not allowed to do this (e.g. a repair partition started outside an approved run) */
  NotAuthorized: 'NotAuthorized',
  /** a backup fails its own manifest (digest, size, signature) or its integrity check */
  BackupInvalid: 'BackupInvalid',
  /** not enough free space for what a step would write (checked before anything changes) */
  InsufficientSpace: 'InsufficientSpace',
  /** a path from the environment or the input is not one a runbook may touch */
  UnsafePath: 'UnsafePath',
  /** a soak after a forward step of a backend migration failed a check (health, error rate, latency); rolled back */
  SoakFailed: 'SoakFailed',
  /**
   * a cleanup transaction found what it would delete or orphan differs from the approved set (a row added, gone or
   * changed since approval); it rolled back: nothing was deleted
   */
  CleanupRolledBack: 'CleanupRolledBack',
  RunbookFailed: 'RunbookFailed',
  CompensationFailed: 'CompensationFailed',
} as const;
export type ErrorTypeName = (typeof ErrorType)[keyof typeof ErrorType];

/** Failures no retry can fix: bad input or configuration, refused operations, stale plans, tampered files. */
export const NON_RETRYABLE_ERROR_TYPES: string[] = [
  ErrorType.InvalidInput,
  ErrorType.EnvironmentInvalid,
  ErrorType.CommandRefused,
  ErrorType.VerificationFailed,
  ErrorType.PlanStale,
  ErrorType.EvidenceMismatch,
  ErrorType.InvalidDigest,
  ErrorType.NotAuthorized,
  ErrorType.BackupInvalid,
  ErrorType.InsufficientSpace,
  ErrorType.UnsafePath,
  ErrorType.SoakFailed,
  ErrorType.CleanupRolledBack,
];

export const OUTCOMES = [
  'succeeded',
  'dry_run',
  'failed',
  'rejected',
  'timed_out',
  'aborted',
  'cancelled',
  'compensation_failed',
  'target_busy',
  /** the procedure did all it could without a fix and handed over to people (its changes kept on purpose) */
  'escalated',
] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Process exit codes of `runbook start --wait` / `watch`, one per outcome. */
export const EXIT_CODES: Record<Outcome, number> = {
  succeeded: 0,
  dry_run: 0,
  failed: 10,
  rejected: 11,
  timed_out: 12,
  aborted: 13,
  cancelled: 14,
  compensation_failed: 15,
  target_busy: 16,
  escalated: 17,
};
export const EXIT_USAGE = 2;

/**
 * The worker wraps every activity result as `{ [ATTEMPT_MARKER]: attempt, value }` so the workflow can record
 * attempt counts per step; the workflow interceptor unwraps it (results without the marker pass through).
 */
export const ATTEMPT_MARKER = '__durableRunbooksAttempt';

/**
 * Dual-write detection defaults (detection.*): a segment's checksum costs about as much as reading ~20 of its
 * rows, so smaller segments make sparse drift slower and larger ones make dense drift slower; 48 balances the two
 * on the bench (BENCHMARKS.md). Past `listAbove` (the share of a window's segments that differ) the checksums
 * mostly say "read it", so the next windows read every segment's fingerprint list instead. `readRows` bounds the
 * rows of fingerprint lists held per side and read.
 */
export const DETECTION_DEFAULTS = {
  pageSize: 5000,
  segmentRows: 48,
  windowSegments: 4096,
  listAbove: 0.25,
  readRows: 65_536,
} as const;
