import { executeChild, workflowInfo } from '@temporalio/workflow';
import type { DriftReport, RepairPlan, SnapshotRef } from '../activities/dual-write/index.js';
import { dualWriteRepairPartition, type RepairPartitionResult } from './dual-write-partition.js';

/** The parts of dualWriteRollback that are not its procedure: partitioned repair and the seed's artifacts. */

export interface PartitionOptions {
  partitionObjects: number;
  partitionWindow: number;
  chunkObjects: number;
  batchSize: number;
  parallelism: number;
  maxHistoryEvents?: number;
}

/** Splits the plan into contiguous line ranges and runs them as child workflows, `partitionWindow` at a time. */
export async function repairInPartitions(
  ref: { environment: string; target: string; runKey: string },
  plan: RepairPlan,
  o: PartitionOptions,
): Promise<{ applied: number; partitions: number; results: RepairPartitionResult[] }> {
  const ranges: Array<[number, number]> = [];
  for (let from = 0; from < plan.total; from += o.partitionObjects) {
    ranges.push([from, Math.min(plan.total, from + o.partitionObjects)]);
  }
  const results: RepairPartitionResult[] = new Array(ranges.length);
  let next = 0;
  const { workflowId } = workflowInfo();
  const lane = async (): Promise<void> => {
    while (next < ranges.length) {
      const i = next++;
      const [from, to] = ranges[i]!;
      results[i] = await executeChild(dualWriteRepairPartition, {
        workflowId: `${workflowId}--partition-${i}`,
        args: [
          {
            ref,
            plan: { path: plan.path, sha256: plan.sha256 },
            from,
            to,
            chunkObjects: o.chunkObjects,
            batchSize: o.batchSize,
            parallelism: o.parallelism,
            maxHistoryEvents: o.maxHistoryEvents,
          },
        ],
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.partitionWindow, ranges.length) }, lane));
  return { applied: results.reduce((n, r) => n + r.applied, 0), partitions: ranges.length, results };
}

export const driftCounts = (r: Pick<DriftReport, 'counts'>): string =>
  Object.entries(r.counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ') || 'none';

export interface ArtifactFacts {
  workflowId: string;
  runId: string;
  environment: string;
  target: string;
  policy: string;
  labels: { a: string; b: string };
  diff: DriftReport;
  plan: RepairPlan;
  snapshot?: SnapshotRef;
  applied: number;
  repairedChecked: number;
  fullPass?: DriftReport;
  approvedBy: string[];
}

/** The seed's two artifacts, dual_write_rollback_YYYYMMDD.json and dual_write_verification_YYYYMMDD.json. */
export function seedArtifacts(f: ArtifactFacts): {
  rollback: Record<string, unknown>;
  verification: Record<string, unknown>;
} {
  const now = new Date().toISOString();
  return {
    rollback: {
      component: 'Dual-Write System',
      operation: 'Rollback',
      timestamp: now,
      workflowId: f.workflowId,
      runId: f.runId,
      environment: f.environment,
      target: f.target,
      rollback_details: {
        policy: f.policy,
        direction: { [`to_${f.labels.a}`]: f.plan.toA, [`to_${f.labels.b}`]: f.plan.toB },
        objects_compared: { [f.labels.a]: f.diff.stats.rowsA, [f.labels.b]: f.diff.stats.rowsB },
        objects_differing: f.diff.total,
        by_class: f.diff.counts,
        objects_repaired: f.applied,
        severity: f.plan.severity,
        diff_file: { path: f.diff.path, sha256: f.diff.sha256 },
        plan_file: { path: f.plan.path, sha256: f.plan.sha256 },
        snapshot: f.snapshot ?? null,
        approved_by: f.approvedBy,
      },
    },
    verification: {
      component: 'Dual-Write System',
      operation: 'Verification',
      timestamp: now,
      workflowId: f.workflowId,
      repaired_objects_verified: f.repairedChecked,
      full_pass: f.fullPass ?? f.diff,
      post_rollback_consistency: 'VERIFIED',
      remaining_differences: 0,
    },
  };
}
