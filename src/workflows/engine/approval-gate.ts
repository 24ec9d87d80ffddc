import { condition, setHandler } from '@temporalio/workflow';
import { DECISION_LIMITS, type Decision } from '../../shared/decisions.js';
import { parseDuration } from '../../shared/duration.js';
import { abortSignal, approveSignal, rejectSignal } from '../../shared/messages.js';
import type { ApprovalPolicy, ApprovalRecord, RunbookStatus } from '../../shared/types.js';
import { verifyDecision } from './activities.js';
import { judgeDecision, stillCounts, type GateFacts, type Judged } from './approval-policy.js';
import type { EscalationLadder } from './escalation.js';
import { errorMessage, nowIso, RunbookStop } from './stop.js';

export type AbortDecision = NonNullable<RunbookStatus['abort']>;

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

  private facts(): GateFacts {
    const s = this.state;
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
    };
  }

  private async receive(decision: Decision, raw: unknown): Promise<void> {
    const { record, verdict } = judgeDecision(decision, raw, this.facts(), nowIso());
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
      const late = stillCounts(decision, record.by, verdict.key.keyId, this.facts());
      if (late) return this.ignore(record, late);
      if (decision === 'approve') this.usedKeys.push(verdict.key.keyId);
    }
    this.accept(decision, record);
  }

  private accept(decision: Decision, record: Judged['record']): void {
    const approval = this.state.approval;
    if (decision === 'abort') {
      const { by, reason, auth, keyId } = record;
      this.onAbort({ by, reason: reason ?? 'not given', at: record.at, auth, keyId });
      // runs from before signed approvals did not record aborts among the decisions
      if (this.rules === 'v1') return;
    } else if (decision === 'approve') approval.approvedBy.push(record.by);
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
