import type {
  createDualWriteActivities,
  DriftReport,
  RepairPlan,
  SnapshotRef,
} from '../activities/dual-write/index.js';
import type { createFlagActivities } from '../activities/flags.js';
import { parseRunbookInput, tightenApproval, tightenLimit } from '../shared/input.js';
import { dualWriteRollbackInputSchema, type DualWriteRollbackInput } from '../shared/schemas.js';
import type { Plan, RunbookResult } from '../shared/types.js';
import { runbookActivities } from './engine/activity-options.js';
import { Runbook } from './engine/runbook.js';
import { driftCounts, repairInPartitions, seedArtifacts } from './dual-write-repair.js';
import { restoreFlags } from './flag-undo.js';
import { workflowInfo } from '@temporalio/workflow';

type DualWriteActivities = ReturnType<typeof createDualWriteActivities>;
type FlagActivities = ReturnType<typeof createFlagActivities>;

const quick = runbookActivities<DualWriteActivities & FlagActivities>('quick');
const long = runbookActivities<DualWriteActivities>('long');
const undo = runbookActivities<DualWriteActivities>('longUndo');

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
] as const;

/**
 * Dual-write rollback (seed: dual-write-rollback-postgres-storage-engine.md): detect drift between two stores,
 * isolate it, decide the direction per object, [halt dual writes if critical], approval, snapshot what will be
 * overwritten, repair in resumable batches, verify zero differences, write the seed's evidence artifacts.
 */
export async function dualWriteRollback(rawInput: DualWriteRollbackInput): Promise<RunbookResult> {
  const input = parseRunbookInput(dualWriteRollbackInputSchema, rawInput);
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
    lockWait: input.lockWait,
  });
  const extra: Record<string, unknown> = { policy: input.policy };

  return rb.run(
    async () => {
      const dw = await rb.step('load environment', () => quick.describeDualWrite(ref), {
        summarize: (d) => `${d.labels.a}: ${d.a}; ${d.labels.b}: ${d.b}`,
      });
      rb.usePolicy(tightenApproval(dw.approval, input.approval), dw.escalation);
      const batchSize = tightenLimit('batchSize', dw.batchSize, input.batchSize);
      const parallelism = tightenLimit('parallelism', dw.parallelism, input.parallelism);
      const diff: DriftReport = await rb.step('detect', () => long.detectDrift(ref), {
        summarize: (r) =>
          `${r.total} differ (${driftCounts(r)}); compared ${r.stats.rowsA}/${r.stats.rowsB} rows by ${r.stats.mode}, streamed ${r.stats.scannedA}/${r.stats.scannedB}`,
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

      // critical drift: stop new dual writes first (a dry run only says it would)
      let halt = '';
      const haltTarget = plan.severity === 'critical' ? dw.haltTarget : undefined;
      if (haltTarget && input.dryRun && rb.isV2) {
        halt = `; would halt dual writes on ${input.environment}/${haltTarget} first`;
        rb.skip('halt dual writes', `dry run: would halt dual writes on ${input.environment}/${haltTarget}`);
      } else if (haltTarget) {
        const haltRef = { environment: input.environment, target: haltTarget };
        let restore: (() => Promise<void>) | undefined;
        await rb.step(
          'halt dual writes',
          async () => {
            await rb.lockAlso(haltTarget);
            const t = await quick.describeTarget(haltRef);
            const flag = t.flagNames.dualWriteEnabled;
            const previous = (await quick.readFlags({ ...haltRef, names: [flag] }))[flag] ?? null;
            const action = t.serviceType === 'process' ? 'reload' : 'restart';
            restore = () => restoreFlags(haltRef, { [flag]: previous }, { [flag]: 'false' }, action);
            await quick.writeFlags({ ...haltRef, values: { [flag]: 'false' } });
            await quick.reloadService({ ...haltRef, action });
            return `${flag}: ${previous ?? '(unset)'} → false on ${input.environment}/${haltTarget}`;
          },
          { summarize: (change) => change, undoBefore: async () => restore?.() },
        );
        halt = `; dual writes halted on ${input.environment}/${haltTarget}`;
      } else {
        rb.skip(
          'halt dual writes',
          plan.severity === 'critical' ? 'critical, but no haltTarget is configured' : `severity ${plan.severity}`,
        );
      }

      const gatePlan: Plan = {
        summary: `${diff.total} objects differ between ${dw.labels.a} and ${dw.labels.b} (${driftCounts(diff)}); policy ${input.policy}: ${plan.toA} writes to ${dw.labels.a}, ${plan.toB} writes to ${dw.labels.b}; severity ${plan.severity}${plan.olderOverwrites ? `, ${plan.olderOverwrites} newer copies would be overwritten by older ones` : ''}${halt}`,
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
      let snapshot: SnapshotRef | undefined;
      let applied = 0;
      let repairedChecked = 0;
      let fullPass: DriftReport | undefined;
      if (plan.total === 0) {
        rb.state.plan = gatePlan;
        for (const s of ['seal plan', 'approval', 'snapshot', 'execute', 'verify'] as const) {
          rb.skip(s, 'no drift: nothing to repair');
        }
      } else {
        await rb.approval(gatePlan, { childInput: rawInput });
        snapshot = await rb.step('snapshot', () => long.snapshotTargets({ ...ref, plan }), {
          summarize: (s) => `${s.entries} objects (${s.bytes} bytes) in ${s.path}`,
          undo: (s) => undo.restoreSnapshot({ ...ref, snapshot: s }),
        });
        extra.snapshot = snapshot;
        if (plan.total > dw.partitionObjects) {
          const partitioned = await rb.step(
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
          extra.execution = partitioned;
          applied = partitioned.applied;
        } else {
          const executed = await rb.step(
            'execute',
            () => long.executeRepair({ ...ref, plan, batchSize, parallelism }),
            {
              summarize: (e) =>
                `${e.applied} objects in ${e.batches} batches of ${batchSize}${e.resumedAt ? `, resumed at batch ${e.resumedAt}` : ''}`,
            },
          );
          extra.execution = executed;
          applied = executed.applied;
        }
        const verification = await rb.step('verify', () => long.verifyRepair({ ...ref, plan }), {
          summarize: (v) =>
            `${v.repairedChecked} repaired objects equal; full pass ${v.full.stats.rowsA}/${v.full.stats.rowsB} rows, 0 differences`,
        });
        extra.verification = verification;
        repairedChecked = verification.repairedChecked;
        fullPass = verification.full;
      }
      const day = new Date().toISOString().slice(0, 10).replaceAll('-', '');
      const artifacts = seedArtifacts({
        workflowId: info.workflowId,
        runId: info.runId,
        environment: input.environment,
        target: input.target,
        policy: input.policy,
        labels: dw.labels,
        diff,
        plan,
        snapshot,
        applied,
        repairedChecked,
        fullPass,
        approvedBy: rb.state.approval.approvedBy,
      });
      extra.artifacts = await rb.step(
        'evidence artifacts',
        () => quick.writeDualWriteArtifacts({ ...ref, day, ...artifacts }),
        { summarize: (a) => `${a.rollback.path}; ${a.verification.path}` },
      );
      await rb.step(
        'notify',
        () =>
          rb.notify(
            `Dual-write rollback on ${input.environment}/${input.target}: ${diff.total} objects repaired`,
            gatePlan.summary,
          ),
        { summarize: (sent) => (sent ? 'sent' : 'delivery failed (see worker log)') },
      );
    },
    () => extra,
  );
}
