import { ActivityCancellationType, proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import { NON_RETRYABLE_ERROR_TYPES } from '../../shared/constants.js';

/**
 * The activity option presets every runbook uses: one home for timeouts and retry policies. A runbook picks a
 * preset per kind of call (`runbookActivities<T>('quick')`) instead of writing its own options.
 */
const retry = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '30s',
  nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
} as const;
/** a cancelled run waits for its activities to stop before compensating, so an undo never races its step */
const cancellationType = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED;

export const ACTIVITY_PRESETS = {
  /** reads, small writes and service reloads (a Kubernetes rollout waits up to its rolloutTimeout, 5m by default) */
  quick: { startToCloseTimeout: '10 minutes', retry: { ...retry, maximumAttempts: 5 }, cancellationType },
  /** checks that poll (health, flags live): they heartbeat */
  verify: {
    startToCloseTimeout: '5 minutes',
    heartbeatTimeout: '10s',
    retry: { ...retry, maximumAttempts: 3 },
    cancellationType,
  },
  /** passes over whole stores: they heartbeat a cursor, so a dead worker is noticed within 10 s and the retry resumes */
  long: {
    startToCloseTimeout: '4 hours',
    heartbeatTimeout: '10s',
    retry: { ...retry, maximumAttempts: 10 },
    cancellationType,
  },
  /** undos of quick steps (restore flags, reload); what still fails after these attempts is compensation_failed */
  undo: {
    startToCloseTimeout: '10 minutes',
    retry: { ...retry, initialInterval: '500ms', maximumInterval: '5s', maximumAttempts: 5 },
  },
  /** undos that restore many objects: batched, heartbeating a cursor, resumable */
  longUndo: {
    startToCloseTimeout: '4 hours',
    heartbeatTimeout: '10s',
    retry: { ...retry, maximumAttempts: 5 },
  },
  /** the engine's bookkeeping (plan hash, evidence, notifications, locks): cheap, retried until it works */
  engine: {
    startToCloseTimeout: '1 minute',
    retry: { ...retry, maximumInterval: '30s', maximumAttempts: 10 },
    cancellationType,
  },
} as const satisfies Record<string, ActivityOptions>;
export type ActivityPreset = keyof typeof ACTIVITY_PRESETS;

/** Activity stubs of type T with a preset's options (overrides for what the preset cannot know, e.g. a window). */
export function runbookActivities<T extends object>(preset: ActivityPreset, overrides: Partial<ActivityOptions> = {}) {
  return proxyActivities<T>({ ...ACTIVITY_PRESETS[preset], ...overrides } as ActivityOptions);
}
