import { ActivityCancellationType, continueAsNew, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { createDualWriteActivities, DualWriteRef, FileRef } from '../activities/dual-write.js';
import { NON_RETRYABLE_ERROR_TYPES } from '../shared/constants.js';

type DualWriteActivities = ReturnType<typeof createDualWriteActivities>;

const { executeRepair } = proxyActivities<DualWriteActivities>({
  startToCloseTimeout: '4 hours',
  heartbeatTimeout: '10s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 10,
    nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES, 'PlanStale'],
  },
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});

export interface RepairPartitionInput {
  ref: DualWriteRef;
  plan: FileRef;
  /** plan lines [from, to) of this partition; `from` advances across continue-as-new */
  from: number;
  to: number;
  chunkObjects: number;
  batchSize: number;
  parallelism: number;
  /** continue-as-new once the history has this many events (or the server suggests it) */
  maxHistoryEvents?: number;
  applied?: number;
  generations?: number;
}

export interface RepairPartitionResult {
  from: number;
  to: number;
  applied: number;
  generations: number;
}

/**
 * One contiguous part of a large repair plan, run as a child workflow so that any worker on the task queue can
 * take it. It repairs chunk by chunk (one heartbeating activity each) and continues-as-new before its history
 * grows past the server's suggestion, carrying its cursor.
 */
export async function dualWriteRepairPartition(input: RepairPartitionInput): Promise<RepairPartitionResult> {
  let cursor = input.from;
  let applied = input.applied ?? 0;
  const generations = input.generations ?? 1;
  while (cursor < input.to) {
    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historyLength >= (input.maxHistoryEvents ?? 10_000)) {
      return continueAsNew<typeof dualWriteRepairPartition>({
        ...input,
        from: cursor,
        applied,
        generations: generations + 1,
      });
    }
    const end = Math.min(input.to, cursor + input.chunkObjects);
    const r = await executeRepair({
      ...input.ref,
      plan: input.plan,
      batchSize: input.batchSize,
      parallelism: input.parallelism,
      lines: { from: cursor, to: end },
    });
    applied += r.applied;
    cursor = end;
  }
  return { from: input.to, to: input.to, applied, generations };
}
