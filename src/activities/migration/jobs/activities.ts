import { approvalPolicyOf } from '../../environment.js';
import { jobTarget, type JobActivityDeps, type TargetRef } from './context.js';
import { detectReplayJobs, type DetectInput } from './detect.js';
import { awaitReplayed, requeueBatch, type BatchInput, type DrainInput } from './requeue.js';

export type { JobActivityDeps } from './context.js';
export type { DetectInput, ReplayPlan } from './detect.js';
export type { BatchInput, BatchResult, DrainInput, DrainResult, ReplayCounts } from './requeue.js';
export type { PlanEntry, PlanKind } from './plan-file.js';

/** The job-replay activities (names are part of workflow histories: keep them). */
export const createJobActivities = (deps: JobActivityDeps) => ({
  /** the target's replay settings, backends and policy (reads the environment only) */
  async describeJobReplay(ref: TargetRef) {
    const { t, m, source } = await jobTarget(deps, ref);
    return {
      environmentFile: t.file,
      source: source.describe(),
      replay: m.replay,
      backends: m.backends,
      primaryKey: m.keys.primary,
      config: m.config,
      approval: approvalPolicyOf(t),
      escalation: t.config.escalation,
    };
  },
  detectReplayJobs: (input: DetectInput) => detectReplayJobs(deps, input),
  requeueJobBatch: (input: BatchInput) => requeueBatch(deps, input),
  awaitReplayedJobs: (input: DrainInput) => awaitReplayed(deps, input),
});

export type JobActivities = ReturnType<typeof createJobActivities>;
