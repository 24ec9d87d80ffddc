import { approvalPolicyOf } from '../environment.js';
import { DualWriteContext, type DualWriteDeps } from './context.js';
import { detect } from './detect.js';
import { executeRepair, type ExecuteInput } from './execute.js';
import { isolateDrift } from './isolate.js';
import { planRepair } from './plan.js';
import { restoreSnapshot } from './restore.js';
import { snapshotTargets } from './snapshot.js';
import { verifyRepair } from './verify.js';
import { writeDualWriteArtifacts } from './artifacts.js';
import { checkDrift } from './check.js';
import type { DualWriteRef } from './types.js';

export type { DualWriteDeps } from './context.js';
export type { ExecuteInput, ExecuteResult } from './execute.js';
export type { RestoreResult } from './restore.js';
export type { CheckResult, CheckSeverity } from './check.js';
export type {
  DriftReport,
  DualWriteRef,
  FileRef,
  RepairAction,
  RepairPlan,
  Side,
  SnapshotEntry,
  SnapshotRef,
} from './types.js';
export { decide } from './decide.js';

/**
 * The dual-write rollback's activities (names are part of workflow histories: keep them). Each reads its target
 * from the environment file, opens the two stores (read-only unless it repairs or restores) and the run's work
 * store, and heartbeats while it passes over a store or a work file.
 */
export const createDualWriteActivities = (deps: DualWriteDeps) => {
  const c = new DualWriteContext(deps);
  return {
    async describeDualWrite(ref: { environment: string; target: string }) {
      const target = await c.target(ref);
      const { t, dw } = target;
      return c.withStores(target, { readOnly: true }, async (stores) => ({
        environmentFile: t.file,
        a: stores.a.describe(),
        b: stores.b.describe(),
        labels: dw.labels,
        tieBreaker: dw.tieBreaker,
        severity: dw.severity,
        haltTarget: dw.haltTarget,
        batchSize: dw.batchSize,
        parallelism: dw.parallelism,
        incremental: dw.incremental,
        partitionObjects: dw.partitionObjects,
        partitionWindow: dw.partitionWindow,
        chunkObjects: dw.chunkObjects,
        approval: approvalPolicyOf(t),
        escalation: t.config.escalation,
        severityRouting: t.config.severityRouting,
      }));
    },
    detectDrift: (ref: DualWriteRef) => detect(c, { ...ref, phase: 'detect' }),
    isolateDrift: (ref: Parameters<typeof isolateDrift>[1]) => isolateDrift(c, ref),
    planRepair: (ref: Parameters<typeof planRepair>[1]) => planRepair(c, ref),
    snapshotTargets: (ref: Parameters<typeof snapshotTargets>[1]) => snapshotTargets(c, ref),
    executeRepair: (ref: ExecuteInput) => executeRepair(c, ref),
    restoreSnapshot: (ref: Parameters<typeof restoreSnapshot>[1]) => restoreSnapshot(c, ref),
    verifyRepair: (ref: Parameters<typeof verifyRepair>[1]) => verifyRepair(c, ref),
    writeDualWriteArtifacts: (ref: Parameters<typeof writeDualWriteArtifacts>[1]) => writeDualWriteArtifacts(c, ref),
    /** detection only, incremental against the segment summaries the last check stored (dual-write-check) */
    checkDrift: (ref: DualWriteRef) => checkDrift(c, ref),
  };
};
