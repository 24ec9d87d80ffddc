import {
  ActivityCancellationType,
  ApplicationFailure,
  executeChild,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { createDualWriteActivities, DriftReport, RepairPlan } from '../activities/dual-write.js';
import type { createFlagActivities } from '../activities/flags.js';
import { ErrorType, NON_RETRYABLE_ERROR_TYPES } from '../shared/constants.js';
import { describeZodError, dualWriteRollbackInputSchema, type DualWriteRollbackInput } from '../shared/schemas.js';
import type { ApprovalPolicy, Plan, RunbookResult } from '../shared/types.js';
import { Runbook } from './engine/runbook.js';
import { dualWriteRepairPartition, type RepairPartitionResult } from './dual-write-partition.js';

type DualWriteActivities = ReturnType<typeof createDualWriteActivities>;
type FlagActivities = ReturnType<typeof createFlagActivities>;

const retry = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '30s',
  nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES, 'PlanStale', 'VerificationFailed', 'EvidenceMismatch'],
};
const cancellationType = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED;
const quick = proxyActivities<DualWriteActivities & FlagActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { ...retry, maximumAttempts: 5 },
  cancellationType,
});
/** long passes over both stores: they heartbeat, so a dead worker is noticed within the heartbeat timeout */
const long = proxyActivities<DualWriteActivities>({
  startToCloseTimeout: '4 hours',
  heartbeatTimeout: '10s',
  retry: { ...retry, maximumAttempts: 10 },
  cancellationType,
});
const undo = proxyActivities<DualWriteActivities & FlagActivities>({
  startToCloseTimeout: '4 hours',
  heartbeatTimeout: '10s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 5,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
});

export const DUAL_WRITE_STEPS = [
  'load environment',
  'detect',
  'isolate',
  'decide direction',
  'halt dual writes',
  'seal plan',
  'approval',
  'snapshot',
  'execute',
  'verify',
  'evidence artifacts',
  'notify',
];

/** Splits the plan into contiguous line ranges and runs them as child workflows, `partitionWindow` at a time. */
async function repairInPartitions(
  ref: { environment: string; target: string; runKey: string },
  plan: RepairPlan,
  o: {
    partitionObjects: number;
    partitionWindow: number;
    chunkObjects: number;
    batchSize: number;
    parallelism: number;
    maxHistoryEvents?: number;
  },
): Promise<{ applied: number; partitions: number; results: RepairPartitionResult[] }> {
  const ranges: Array<[number, number]> = [];
  for (let from = 0; from < plan.total; from += o.partitionObjects)
    ranges.push([from, Math.min(plan.total, from + o.partitionObjects)]);
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

const counts = (r: DriftReport) =>
  Object.entries(r.counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ') || 'none';

/**
 * Dual-write rollback (seed: dual-write-rollback-postgres-storage-engine.md): detect drift between two stores,
 * isolate it, decide the direction per object, [halt dual writes if critical], approval, snapshot what will be
 * overwritten, repair in resumable batches, verify zero differences, write the seed's evidence artifacts.
 */
export async function dualWriteRollback(rawInput: DualWriteRollbackInput): Promise<RunbookResult> {
  const parsed = dualWriteRollbackInputSchema.safeParse(rawInput);
  if (!parsed.success)
    throw ApplicationFailure.nonRetryable(`invalid input: ${describeZodError(parsed.error)}`, ErrorType.InvalidInput);
  const input = parsed.data;
  const info = workflowInfo();
  const ref = { environment: input.environment, target: input.target, runKey: `${info.workflowId}-${info.runId}` };
  const rb = new Runbook({
    runbook: 'dual-write-rollback',
    environment: input.environment,
    target: input.target,
    requester: input.requester,
    reason: input.reason,
    dryRun: input.dryRun,
    steps: DUAL_WRITE_STEPS,
  });
  const extra: Record<string, unknown> = { policy: input.policy };

  return rb.run(
    async () => {
      const dw = await rb.step('load environment', () => quick.describeDualWrite(ref), {
        summarize: (d) => `${d.labels.a}: ${d.a}; ${d.labels.b}: ${d.b}`,
      });
      const diff = await rb.step('detect', () => long.detectDrift(ref), {
        summarize: (r) =>
          `${r.total} differ (${counts(r)}); compared ${r.stats.rowsA}/${r.stats.rowsB} rows by ${r.stats.mode}, streamed ${r.stats.scannedA}/${r.stats.scannedB}`,
      });
      extra.detection = diff;
      const isolation = await rb.step('isolate', () => long.isolateDrift({ ...ref, diff }), {
        summarize: (r) => `report ${r.path}`,
      });
      extra.isolation = isolation;
      const plan: RepairPlan = await rb.step(
        'decide direction',
        () => long.planRepair({ ...ref, diff, policy: input.policy }),
        {
          summarize: (p) =>
            `${p.total} actions (${p.toA} → ${dw.labels.a}, ${p.toB} → ${dw.labels.b}); severity ${p.severity}`,
        },
      );
      extra.plan = plan;

      if (plan.severity === 'critical' && dw.haltTarget) {
        const haltRef = { environment: input.environment, target: dw.haltTarget };
        const halt = await quick.describeTarget(haltRef);
        const flag = halt.flagNames.dualWriteEnabled;
        const previous = (await quick.readFlags({ ...haltRef, names: [flag] }))[flag] ?? null;
        const action = halt.serviceType === 'process' ? 'reload' : 'restart';
        await rb.step(
          'halt dual writes',
          async () => {
            await quick.writeFlags({ ...haltRef, values: { [flag]: 'false' } });
            return quick.reloadService({ ...haltRef, action });
          },
          {
            summarize: () => `${flag}: ${previous ?? '(unset)'} → false on ${input.environment}/${dw.haltTarget}`,
            undo: async () => {
              await undo.writeFlags({ ...haltRef, values: { [flag]: previous } });
              await undo.reloadService({ ...haltRef, action });
            },
          },
        );
      } else {
        rb.skip(
          'halt dual writes',
          plan.severity === 'critical' ? 'critical, but no haltTarget is configured' : `severity ${plan.severity}`,
        );
      }

      const gatePlan: Plan = {
        summary: `${diff.total} objects differ between ${dw.labels.a} and ${dw.labels.b} (${counts(diff)}); policy ${input.policy}: ${plan.toA} writes to ${dw.labels.a}, ${plan.toB} writes to ${dw.labels.b}; severity ${plan.severity}${plan.olderOverwrites ? `, ${plan.olderOverwrites} newer copies would be overwritten by older ones` : ''}`,
        changes: Object.entries(plan.byClassAndAction).map(([item, n]) => ({
          item,
          from: `${n} differing`,
          to: 'repaired',
        })),
        details: {
          diff: { path: diff.path, sha256: diff.sha256, counts: diff.counts },
          plan: { path: plan.path, sha256: plan.sha256 },
          isolation: { path: isolation.path, sha256: isolation.sha256, sample: isolation.sample },
          sample: plan.sample,
          severity: plan.severity,
        },
      };
      if (plan.total === 0) {
        rb.state.plan = gatePlan;
        for (const s of ['seal plan', 'approval', 'snapshot', 'execute', 'verify'])
          rb.skip(s, 'no drift: nothing to repair');
      } else {
        const policy: ApprovalPolicy = {
          ...dw.approval,
          quorum: Math.max(dw.approval.quorum, input.approval?.quorum ?? 0),
          timeout: input.approval?.timeout ?? dw.approval.timeout,
        };
        await rb.approval(gatePlan, policy, dw.escalation);
        const snapshot = await rb.step('snapshot', () => long.snapshotTargets({ ...ref, plan }), {
          summarize: (s) => `${s.entries} objects (${s.bytes} bytes) in ${s.path}`,
          undo: (s) => undo.restoreSnapshot({ ...ref, snapshot: s }),
        });
        extra.snapshot = snapshot;
        const batchSize = input.batchSize ?? dw.batchSize;
        const parallelism = input.parallelism ?? dw.parallelism;
        if (plan.total > dw.partitionObjects) {
          extra.execution = await rb.step(
            'execute',
            () =>
              repairInPartitions(ref, plan, {
                ...dw,
                batchSize,
                parallelism,
                maxHistoryEvents: input.maxPartitionHistory,
              }),
            {
              summarize: (e) =>
                `${e.applied} objects in ${e.partitions} partitions (child workflows, ${dw.partitionWindow} at a time)`,
            },
          );
        } else {
          extra.execution = await rb.step(
            'execute',
            () => long.executeRepair({ ...ref, plan, batchSize, parallelism }),
            {
              summarize: (e) =>
                `${e.applied} objects in ${e.batches} batches of ${batchSize}${e.resumedAt ? `, resumed at batch ${e.resumedAt}` : ''}`,
            },
          );
        }
        extra.verification = await rb.step('verify', () => long.verifyRepair({ ...ref, plan }), {
          summarize: (v) =>
            `${v.repairedChecked} repaired objects equal; full pass ${v.full.stats.rowsA}/${v.full.stats.rowsB} rows, 0 differences`,
        });
      }
      const day = new Date().toISOString().slice(0, 10).replaceAll('-', '');
      extra.artifacts = await rb.step(
        'evidence artifacts',
        () =>
          quick.writeDualWriteArtifacts({
            ...ref,
            day,
            rollback: {
              component: 'Dual-Write System',
              operation: 'Rollback',
              timestamp: new Date().toISOString(),
              workflowId: info.workflowId,
              runId: info.runId,
              environment: input.environment,
              target: input.target,
              rollback_details: {
                policy: input.policy,
                direction: { [`to_${dw.labels.a}`]: plan.toA, [`to_${dw.labels.b}`]: plan.toB },
                objects_compared: { [dw.labels.a]: diff.stats.rowsA, [dw.labels.b]: diff.stats.rowsB },
                objects_differing: diff.total,
                by_class: diff.counts,
                objects_repaired: (extra.execution as { applied?: number } | undefined)?.applied ?? 0,
                severity: plan.severity,
                diff_file: { path: diff.path, sha256: diff.sha256 },
                plan_file: { path: plan.path, sha256: plan.sha256 },
                snapshot: extra.snapshot ?? null,
                approved_by: rb.state.approval.approvedBy,
              },
            },
            verification: {
              component: 'Dual-Write System',
              operation: 'Verification',
              timestamp: new Date().toISOString(),
              workflowId: info.workflowId,
              repaired_objects_verified:
                (extra.verification as { repairedChecked?: number } | undefined)?.repairedChecked ?? 0,
              full_pass: (extra.verification as { full?: DriftReport } | undefined)?.full ?? diff,
              post_rollback_consistency: 'VERIFIED',
              remaining_differences: 0,
            },
          }),
        { summarize: (a) => `${a.rollback.path}; ${a.verification.path}` },
      );
      await rb.step(
        'notify',
        () =>
          rb.notify(
            `Dual-write rollback on ${input.environment}/${input.target}: ${diff.total} objects repaired`,
            gatePlan.summary,
          ),
        {
          summarize: (sent) => (sent ? 'sent' : 'delivery failed (see worker log)'),
        },
      );
    },
    () => extra,
  );
}
