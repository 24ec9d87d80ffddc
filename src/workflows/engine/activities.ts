import type { createEngineActivities } from '../../activities/engine.js';
import type { createRunActivities } from '../../activities/runs.js';
import { runbookActivities } from './activity-options.js';

type EngineActivities = ReturnType<typeof createEngineActivities> & ReturnType<typeof createRunActivities>;

/** Engine bookkeeping: plan hashing, notifications, evidence, target locks. */
export const engineActivities = runbookActivities<EngineActivities>('engine');

/** Signature checks: an activity, so the verdict is in history (three events each) and replay never re-verifies. */
export const { verifyDecision } = engineActivities;
