import { continueAsNew, patched, workflowInfo } from '@temporalio/workflow';
import type { createDualWriteActivities, DualWriteRef, FileRef } from '../activities/dual-write/index.js';
import { engineActivities } from './engine/activities.js';
import { runbookActivities } from './engine/activity-options.js';

type DualWriteActivities = ReturnType<typeof createDualWriteActivities>;

const { executeRepair } = runbookActivities<DualWriteActivities>('long');

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
 * One contiguous part of a large repair plan, run as a child workflow of dualWriteRollback so that any worker on
 * the task queue can take it (started any other way it refuses: authorizeRepairPartition). It repairs chunk by
 * chunk (one heartbeating activity each) and continues-as-new before its history grows past the server's
 * suggestion, carrying its cursor.
 */
export async function dualWriteRepairPartition(input: RepairPartitionInput): Promise<RepairPartitionResult> {
  // only the child of an approved dualWriteRollback executing this very plan may repair (checked every generation)
  if (patched('partition-authorization')) {
    const { parent } = workflowInfo();
    await engineActivities.authorizeRepairPartition({
      parent: parent && { workflowId: parent.workflowId, runId: parent.runId },
      environment: input.ref?.environment,
      target: input.ref?.target,
      planSha256: input.plan?.sha256,
    });
  }
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
