import { proxyLocalActivities } from '@temporalio/workflow';
import type { createEngineActivities } from '../../activities/engine.js';
import type { createRunActivities } from '../../activities/runs.js';
import { runbookActivities } from './activity-options.js';

type EngineActivities = ReturnType<typeof createEngineActivities> & ReturnType<typeof createRunActivities>;

/** Engine bookkeeping: plan hashing, notifications, evidence, target locks. */
export const engineActivities = runbookActivities<EngineActivities>('engine');

/** Signature checks run as local activities: milliseconds, one marker in history each. */
export const { verifyDecision } = proxyLocalActivities<EngineActivities>({
  startToCloseTimeout: '10s',
  retry: { maximumAttempts: 3 },
});
