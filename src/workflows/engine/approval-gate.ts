import { condition, setHandler } from '@temporalio/workflow';
import { DECISION_LIMITS, type Decision } from '../../shared/decisions.js';
import { parseDuration } from '../../shared/duration.js';
import { abortSignal, approveSignal, rejectSignal } from '../../shared/messages.js';
import type { ApprovalPolicy, ApprovalRecord, ApprovalStage, RunbookStatus } from '../../shared/types.js';
import { verifyDecision } from './activities.js';
import { judgeDecision, stillCounts, type GateFacts, type Judged } from './approval-policy.js';
import type { EscalationLadder } from './escalation.js';
import { errorMessage, nowIso, RunbookStop } from './stop.js';

export type AbortDecision = NonNullable<RunbookStatus['abort']>;

/** The stage waiting now (per-stage approvals): its record in the status and what only the gate keeps. */
interface OpenStage {
  record: ApprovalStage;
  policy: ApprovalPolicy;
  rejected: boolean;
  /** key ids of this stage's accepted signed approvals (two approvals of a stage need two keys) */
  usedKeys: string[];
}

/**
 * The approval gate: receives approve / reject / abort signals at any time, judges each with the pure policy
 * (approval-policy.ts), checks signatures in an activity (its result is in history, so replay is deterministic),
 * records every decision with why it counted or not, and waits for a quorum, a rejection or the timeout.
 */
export class ApprovalGate {
  private open = false;
  private rejected = false;
  private readonly nonces = new Set<string>();
  private readonly usedKeys: string[] = [];
  private verifications = 0;
  private stage: OpenStage | undefined;

  constructor(
    private readonly state: RunbookStatus,
    private readonly rules: 'v1' | 'v2',
    private readonly onAbort: (abort: AbortDecision) => void,
  ) {
    setHandler(approveSignal, (signal) => this.receive('approve', signal));
    setHandler(rejectSignal, (signal) => this.receive('reject', signal));
    setHandler(abortSignal, (signal) => this.receive('abort', signal));
  }

  /** Decisions are judged against this policy from now on (the environment's, tightened by the input). */
  usePolicy(policy: ApprovalPolicy): void {
    this.state.approval.policy = policy;
  }

  /**
   * Opens the gate for the sealed plan and waits. Returns on a quorum; ends the run as rejected or timed_out.
   * The ladder escalates while it waits.
   */
  async wait(ladder: EscalationLadder): Promise<void> {
    const policy = this.state.approval.policy!;
    const approval = this.state.approval;
    this.open = true;
    approval.waiting = true;
    try {
      const decided = await ladder.around(
        'approval pending',
        '0s',
        condition(() => this.rejected || approval.approvedBy.length >= policy.quorum, parseDuration(policy.timeout)),
      );
      if (!decided) throw new RunbookStop('timed_out', `approval timed out after ${policy.timeout}`);
      if (this.rejected) {
        const by = approval.records.find((r) => r.kind === 'reject' && r.accepted);
        throw new RunbookStop('rejected', `rejected by ${by?.by}${by?.comment ? `: ${by.comment}` : ''}`);
      }
    } finally {
      this.open = false;
      approval.waiting = false;
    }
  }

  /**
   * Per-stage approvals: waits for a quorum of the stage's own policy on the stage's own plan hash. Nonces and the
   * signature-check budget are the run's; approvals, keys and the rejection are the stage's, so a decision for
   * one stage never counts for another. Returns on a quorum; ends the run as rejected or timed_out.
   */
  async waitStage(record: ApprovalStage, policy: ApprovalPolicy, ladder: EscalationLadder): Promise<void> {
    const approval = this.state.approval;
    const stage: OpenStage = { record, policy, rejected: false, usedKeys: [] };
    this.stage = stage;
    approval.stage = record.stage;
    approval.waiting = true;
    record.status = 'waiting';
    try {
      const decided = await ladder.around(
        `approval pending (${record.stage})`,
        '0s',
        condition(() => stage.rejected || record.approvedBy.length >= policy.quorum, parseDuration(policy.timeout)),
      );
      if (!decided) {
        record.status = 'timed_out';
        throw new RunbookStop('timed_out', `approval of "${record.stage}" timed out after ${policy.timeout}`);
      }
      if (stage.rejected) {
        record.status = 'rejected';
        const by = approval.records.find((r) => r.kind === 'reject' && r.accepted && r.stage === record.stage);
        throw new RunbookStop(
          'rejected',
          `"${record.stage}" rejected by ${by?.by}${by?.comment ? `: ${by.comment}` : ''}`,
        );
      }
      record.status = 'approved';
    } finally {
      if (record.status === 'waiting') record.status = 'ended';
      record.decidedAt = nowIso();
      this.stage = undefined;
      approval.stage = undefined;
      approval.waiting = false;
    }
  }

  private facts(decision: Decision): GateFacts {
    const s = this.state;
    const stage = this.stage;
    const stagePlans = s.approval.stages?.map((x) => ({ stage: x.stage, planHash: x.planHash }));
    // approve and reject while a stage waits are judged by the stage; an abort always by the run's policy
    if (stage && decision !== 'abort') {
      return {
        ...this.facts('abort'),
        planHash: stage.record.planHash,
        gateOpen: true,
        policy: stage.policy,
        approvedBy: stage.record.approvedBy,
        usedKeys: stage.usedKeys,
        stage: stage.record.stage,
        stagePlans,
      };
    }
    return {
      rules: this.rules,
      now: Date.now(),
      workflowId: s.workflowId,
      runId: s.runId,
      requester: s.requester,
      planHash: s.planHash,
      gateOpen: this.open,
      ending: Boolean(s.outcome || s.abort),
      policy: s.approval.policy,
      approvedBy: s.approval.approvedBy,
      usedKeys: this.usedKeys,
      usedNonces: this.nonces,
      verifications: this.verifications,
      ...(stagePlans ? { stage: stage?.record.stage, stagePlans } : {}),
    };
  }

  private async receive(decision: Decision, raw: unknown): Promise<void> {
    const facts = this.facts(decision);
    const { record, verdict } = judgeDecision(decision, raw, facts, nowIso());
    const stage = decision === 'abort' ? undefined : this.stage;
    if (stage) record.stage = stage.record.stage;
    if (verdict.verdict === 'ignore') return this.ignore(record, verdict.reason);
    if (verdict.verdict === 'verify') {
      this.verifications++;
      let valid: boolean;
      try {
        ({ valid } = await verifyDecision({
          publicKey: verdict.key.publicKey,
          text: verdict.text,
          signature: verdict.signature,
        }));
      } catch (err) {
        return this.ignore(record, `the signature could not be checked: ${errorMessage(err)}`);
      }
      if (!valid)
        return this.ignore(record, `the signature does not verify with ${verdict.key.name}'s key ${verdict.key.keyId}`);
      // only a verified nonce is spent: a forged copy cannot burn the real decision's nonce
      if (this.nonces.has(verdict.nonce)) return this.ignore(record, 'nonce already used (a replayed decision)');
      this.nonces.add(verdict.nonce);
      // while the signature was checked the stage may have closed and another opened: it must be the same one
      const late = stillCounts(
        decision,
        record.by,
        verdict.key.keyId,
        this.facts(decision),
        stage ? stage.record.planHash : undefined,
      );
      if (late) return this.ignore(record, late);
      if (decision === 'approve') (stage ? stage.usedKeys : this.usedKeys).push(verdict.key.keyId);
    }
    this.accept(decision, record, stage);
  }

  private accept(decision: Decision, record: Judged['record'], stage: OpenStage | undefined): void {
    const approval = this.state.approval;
    if (decision === 'abort') {
      const { by, reason, auth, keyId } = record;
      this.onAbort({ by, reason: reason ?? 'not given', at: record.at, auth, keyId });
      // runs from before signed approvals did not record aborts among the decisions
      if (this.rules === 'v1') return;
    } else if (decision === 'approve') (stage ? stage.record.approvedBy : approval.approvedBy).push(record.by);
    else if (stage) stage.rejected = true;
    else this.rejected = true;
    approval.records.push({ ...record, accepted: true });
  }

  /** Ignored decisions are kept up to the record limit, then only counted. */
  private ignore(record: Judged['record'], reason: string): void {
    const approval = this.state.approval;
    if (this.rules === 'v2' && approval.records.length >= DECISION_LIMITS.records) {
      approval.dropped = (approval.dropped ?? 0) + 1;
      return;
    }
    // runs from before signed approvals did not record ignored aborts either
    if (this.rules === 'v1' && record.kind === 'abort') return;
    const entry: ApprovalRecord = { ...record, accepted: false, ignoredBecause: reason };
    approval.records.push(entry);
  }
}
