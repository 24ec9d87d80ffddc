import type { ApprovalPolicy, RunbookStatus } from './types.js';

/** The gate approve and reject are judged against now. */
export interface CurrentGate {
  /** the stage waiting (per-stage approvals); absent: the run's own gate */
  stage?: string;
  planHash?: string;
  policy?: ApprovalPolicy;
  approvedBy: string[];
}

/**
 * The waiting stage of a run with per-stage approvals, else the run's gate. An abort is always judged by the
 * run's gate (its plan hash and policy), whatever stage waits.
 */
export function currentGate(s: RunbookStatus, decision: 'approve' | 'reject' | 'abort' = 'approve'): CurrentGate {
  const stage =
    decision !== 'abort' && s.approval.stage ? s.approval.stages?.find((x) => x.stage === s.approval.stage) : undefined;
  if (stage && stage.policy !== 'automatic') {
    return { stage: stage.stage, planHash: stage.planHash, policy: stage.policy, approvedBy: stage.approvedBy };
  }
  return { planHash: s.planHash, policy: s.approval.policy, approvedBy: s.approval.approvedBy };
}
