import { ActivityCancellationType, proxyActivities } from '@temporalio/workflow';
import type { createEngineActivities } from '../../activities/engine.js';
import { NON_RETRYABLE_ERROR_TYPES } from '../../shared/constants.js';

type EngineActivities = ReturnType<typeof createEngineActivities>;

/** Engine bookkeeping: plan hashing, notifications, evidence. Cheap and retried until they work. */
export const engineActivities = proxyActivities<EngineActivities>({
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 10,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});
