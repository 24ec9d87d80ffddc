import type { Outcome } from './constants.js';

export type StepStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'compensated';
export type Phase = 'prepare' | 'approval' | 'execute' | 'compensate' | 'finalize';

export interface StepRecord {
  name: string;
  status: StepStatus;
  /** true when the step changes something and registered an undo */
  destructive: boolean;
  startedAt?: string;
  endedAt?: string;
  attempts: number;
  result?: string;
  error?: string;
}

export interface ApprovalSignal {
  by: string;
  comment?: string;
  planHash: string;
}
export interface RejectSignal {
  by: string;
  comment?: string;
  planHash?: string;
}
export interface AbortSignal {
  by: string;
  reason: string;
}

export interface ApprovalRecord {
  kind: 'approve' | 'reject';
  by: string;
  comment?: string;
  planHash?: string;
  at: string;
  accepted: boolean;
  /** why an approval was ignored: unknown approver, stale plan hash, self-approval, duplicate, ... */
  ignoredBecause?: string;
}

export interface ApprovalPolicy {
  /** who may approve or reject; empty means anyone except (unless allowed) the requester */
  approvers: string[];
  /** distinct approvals needed (M of N) */
  quorum: number;
  allowSelfApproval: boolean;
  /** how long the gate waits before the run ends as `timed_out` */
  timeout: string;
}

export interface EscalationLevel {
  level: number;
  /** delay from the start of the wait (approval) or the step's expected end */
  after: string;
  /** notification channels of the environment to use; empty = all */
  channels: string[];
  contact?: string;
}

export interface EscalationRecord {
  level: number;
  at: string;
  reason: string;
  contact?: string;
  delivered: boolean;
  error?: string;
}

export interface CompensationRecord {
  step: string;
  status: 'succeeded' | 'failed';
  startedAt: string;
  endedAt: string;
  error?: string;
}

export interface PlanChange {
  /** what changes, e.g. a flag name */
  item: string;
  from: string | null;
  to: string | null;
}

export interface Plan {
  summary: string;
  changes: PlanChange[];
  details?: Record<string, unknown>;
}

export interface PhaseTiming {
  phase: Phase;
  startedAt: string;
  endedAt?: string;
  durationMs?: number;
}

export interface RunbookStatus {
  runbook: string;
  workflowId: string;
  runId: string;
  environment: string;
  target: string;
  requester: string;
  reason: string;
  dryRun: boolean;
  startedAt: string;
  endedAt?: string;
  phase: Phase;
  currentStep?: string;
  steps: StepRecord[];
  plan?: Plan;
  planHash?: string;
  approval: {
    policy?: ApprovalPolicy;
    waiting: boolean;
    approvedBy: string[];
    records: ApprovalRecord[];
  };
  escalation: { level: number; history: EscalationRecord[] };
  compensations: CompensationRecord[];
  phases: PhaseTiming[];
  abort?: AbortSignal & { at: string };
  outcome?: Outcome;
  error?: string;
}

export interface EvidenceRef {
  path: string;
  sha256: string;
  chainHead: string;
}

export interface RunbookResult extends RunbookStatus {
  outcome: Outcome;
  evidence?: EvidenceRef;
}

/** Everything the evidence file holds (written by an activity, verified by `runbook verify-evidence`). */
export interface EvidenceInput {
  status: RunbookStatus;
  extra?: Record<string, unknown>;
}
