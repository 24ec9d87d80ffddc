import type { Outcome } from './constants.js';
import type { Decision, DecisionSignal } from './decisions.js';

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

/** Signal payloads of approve / reject / abort (see decisions.ts for the signed form). */
export type ApprovalSignal = DecisionSignal;
export type RejectSignal = DecisionSignal;
export type AbortSignal = DecisionSignal;

export interface ApprovalRecord {
  kind: Decision;
  /** as sent (cut to the length limit when longer) */
  by: string;
  comment?: string;
  /** abort */
  reason?: string;
  planHash?: string;
  at: string;
  accepted: boolean;
  /** why a decision was ignored: unknown approver, stale plan hash, bad signature, expired, replayed, ... */
  ignoredBecause?: string;
  /** absent in histories from before signed approvals (= unsigned) */
  auth?: 'signed' | 'unsigned';
  keyId?: string;
  signature?: string;
  issuedAt?: string;
  nonce?: string;
  /** the approval stage the decision was judged for (runs with per-stage approvals; absent: the run's gate) */
  stage?: string;
}

/** How an approval stage ended (or that it waits). */
export type ApprovalStageStatus = 'waiting' | 'approved' | 'automatic' | 'rejected' | 'timed_out' | 'ended';

/**
 * One stage of a run with per-stage approvals (rb.stageApproval): its own plan, sealed and hashed with the
 * workflow id, run id and stage name, and its own policy (`automatic`: no gate, recorded as such).
 */
export interface ApprovalStage {
  /** the stage's name: the declared step that seals and waits */
  stage: string;
  plan: Plan;
  planHash: string;
  policy: ApprovalPolicy | 'automatic';
  status: ApprovalStageStatus;
  /** names of the accepted approvals of this stage */
  approvedBy: string[];
  sealedAt: string;
  decidedAt?: string;
}

/** A key a person signs decisions with (from the environment's approvers / abortBy). */
export interface SignerKey {
  name: string;
  /** `ed25519:<base64>` */
  publicKey: string;
  /** first 16 hex chars of sha256 of the raw key */
  keyId: string;
}

export interface ApprovalPolicy {
  /** who may approve or reject; empty means anyone except (unless allowed) the requester */
  approvers: string[];
  /** distinct approvals needed (M of N) */
  quorum: number;
  allowSelfApproval: boolean;
  /** how long the gate waits before the run ends as `timed_out` */
  timeout: string;
  /** the fields below are absent in histories from before signed approvals */
  requireSignatures?: boolean;
  signatureTtl?: string;
  /** who may abort (default: approvers and the requester) */
  abortBy?: string[];
  keys?: SignerKey[];
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
  /** kept: the run handed over to people and left this step's change in place on purpose (rb.handOver) */
  status: 'succeeded' | 'failed' | 'kept';
  startedAt: string;
  endedAt: string;
  error?: string;
  /** kept: why */
  reason?: string;
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
  /** v2: signed approvals, run-bound plan hashes, target locks (absent in runs started before them) */
  engine?: 'v1' | 'v2';
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
    /** ignored decisions past the record limit: counted, not kept */
    dropped?: number;
    /** a child run whose parent's approved plan covers it (rb.approval(plan, { childInput })): what was found */
    parentCover?: ParentCover;
    /** per-stage approvals, in the order sealed (absent in runs with one gate) */
    stages?: ApprovalStage[];
    /** the stage waiting now: approve and reject are judged against its plan hash and policy */
    stage?: string;
  };
  /** the targets this run holds (or waits for): one runbook per target at a time */
  locks?: LockRecord[];
  escalation: { level: number; history: EscalationRecord[] };
  compensations: CompensationRecord[];
  phases: PhaseTiming[];
  abort?: { by: string; reason: string; at: string; auth?: 'signed' | 'unsigned'; keyId?: string };
  /** what the runbook publishes while it runs (rb.publish): an RTO, a severity; shown by `status`, kept in the result */
  results?: Record<string, unknown>;
  outcome?: Outcome;
  error?: string;
}

export interface LockRecord {
  environment: string;
  target: string;
  /** the lock workflow's id */
  lockId: string;
  state: 'waiting' | 'held' | 'released' | 'gave_up';
  requestedAt: string;
  grantedAt?: string;
  /** while waiting: the run that holds the target */
  holder?: LockHolder;
  /** held through the parent run that holds the target (a child of the holder shares its lock) */
  sharedWith?: LockHolder;
}

/** A child run's approval through its parent's approved plan (src/activities/cover.ts). */
export type ParentCover =
  | {
      covered: true;
      parent: { workflowId: string; runId: string; runbook: string };
      planHash: string;
      approvedBy: string[];
      /** the digest of the child's input the parent's plan lists */
      digest: string;
    }
  | { covered: false; why: string };

export interface LockHolder {
  workflowId: string;
  runId: string;
  runbook: string;
  since?: string;
}

export interface EvidenceRef {
  path: string;
  sha256: string;
  chainHead: string;
  /** the worker's signature of the chain head (absent in histories from before signed evidence) */
  keyId?: string;
  signature?: string;
}

export interface RunbookResult extends RunbookStatus {
  outcome: Outcome;
  evidence?: EvidenceRef;
  /** what the runbook reports beside its steps (rb.run's `extra`; also in the evidence) */
  extra?: Record<string, unknown>;
}

/** Everything the evidence file holds (written by an activity, verified by `runbook verify-evidence`). */
export interface EvidenceInput {
  status: RunbookStatus;
  extra?: Record<string, unknown>;
}
