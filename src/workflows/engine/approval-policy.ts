import { parseDuration } from '../../shared/duration.js';
import {
  claimsOf,
  decisionSigningText,
  DECISION_LIMITS,
  type Decision,
  type DecisionSignal,
} from '../../shared/decisions.js';
import { canonicalName } from '../../shared/names.js';
import type { ApprovalPolicy, ApprovalRecord, SignerKey } from '../../shared/types.js';

/**
 * The approval policy as a pure function: given what the run knows and one decision signal, whether the decision
 * is ignored (and why), accepted as it is (unsigned, where allowed), or accepted once its signature verifies.
 * No Temporal APIs here, so it is unit-tested without a server; the gate (approval-gate.ts) applies the verdicts.
 */

export interface GateFacts {
  /**
   * `v1`: the rules of runs started before signed approvals (names compared exactly, abort unchecked), kept so
   * their histories replay; `v2`: everything below.
   */
  rules: 'v1' | 'v2';
  /** workflow time, ms */
  now: number;
  workflowId: string;
  runId: string;
  requester: string;
  /** the sealed plan's hash, once there is one */
  planHash?: string;
  /** approvals and rejections count only while the gate waits */
  gateOpen: boolean;
  /** the run has an outcome or an accepted abort: nothing more to decide */
  ending: boolean;
  policy?: ApprovalPolicy;
  /** names of the accepted approvals so far */
  approvedBy: string[];
  /** key ids of the accepted signed approvals so far */
  usedKeys: string[];
  /** nonces of every signed decision that verified (a replay of one is ignored) */
  usedNonces: ReadonlySet<string>;
  /** signature checks run so far */
  verifications: number;
  /** runs with per-stage approvals: the stage waiting (approve/reject are judged against its plan and policy) */
  stage?: string;
  /** runs with per-stage approvals: every stage sealed so far (a decision naming another stage's plan is named so) */
  stagePlans?: ReadonlyArray<{ stage: string; planHash: string }>;
}

export type Verdict =
  | { verdict: 'ignore'; reason: string }
  | { verdict: 'accept' }
  | { verdict: 'verify'; key: SignerKey; text: string; signature: string; nonce: string };

export interface Judged {
  /** the record to keep (accepted / ignoredBecause are set by the gate from the verdict) */
  record: Omit<ApprovalRecord, 'accepted'>;
  verdict: Verdict;
}

const HEX_PREFIX = /^[0-9a-f]{12,64}$/;
const FULL_HASH = /^[0-9a-f]{64}$/;
/** signed decisions may be issued this far ahead of the workflow's clock (clock skew between machines) */
const FUTURE_SKEW_MS = 5 * 60_000;
const SIGNED_FIELDS = ['workflowId', 'runId', 'issuedAt', 'nonce', 'keyId', 'signature'] as const;

const ignore = (reason: string): Verdict => ({ verdict: 'ignore', reason });
const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
const cut = (value: string | undefined, max: number): string | undefined =>
  value === undefined || value.length <= max ? value : `${value.slice(0, max)}…`;
const inList = (list: string[], name: string): boolean => list.some((n) => canonicalName(n) === canonicalName(name));

/** Judges one decision signal. `raw` is the signal payload exactly as received (untrusted). */
export function judgeDecision(decision: Decision, raw: unknown, facts: GateFacts, at: string): Judged {
  const signal = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  const by = (text(signal.by) ?? '').trim();
  const planHash = text(signal.planHash)?.trim().toLowerCase() || undefined;
  const comment = text(signal.comment);
  const reason = text(signal.reason);
  const signed = SIGNED_FIELDS.some((f) => signal[f] !== undefined);
  const record: Judged['record'] = {
    kind: decision,
    by: cut(by, DECISION_LIMITS.by) || '(missing)',
    comment: cut(comment, DECISION_LIMITS.comment),
    reason: cut(reason, DECISION_LIMITS.reason),
    planHash: planHash && cut(planHash, 64),
    at,
  };
  if (facts.rules === 'v1') return { record, verdict: judgeV1(decision, by, planHash, facts) };

  record.auth = signed ? 'signed' : 'unsigned';
  if (signed) {
    record.keyId = cut(text(signal.keyId), 64);
    record.signature = cut(text(signal.signature), 128);
    record.issuedAt = cut(text(signal.issuedAt), 64);
    record.nonce = cut(text(signal.nonce), DECISION_LIMITS.nonce);
  }
  const verdict = judgeV2(decision, signal, { by, planHash, comment, reason, signed }, facts);
  return { record, verdict };
}

function judgeV1(decision: Decision, by: string, planHash: string | undefined, f: GateFacts): Verdict {
  if (decision === 'abort') return f.ending ? ignore('the run is already ending') : { verdict: 'accept' };
  const policy = f.policy;
  if (!f.gateOpen || !policy || !f.planHash) return ignore('no approval is pending');
  if (!by) return ignore('missing "by"');
  if (policy.approvers.length > 0 && !policy.approvers.includes(by)) return ignore(`${by} is not an allowed approver`);
  if (decision === 'approve') {
    if (!policy.allowSelfApproval && by === f.requester) return ignore('the requester may not approve their own run');
    if (!planHash) return ignore('missing planHash');
    if (!HEX_PREFIX.test(planHash)) return ignore('planHash must be at least 12 hex characters');
    if (!f.planHash.startsWith(planHash)) {
      return ignore(`stale plan hash ${planHash.slice(0, 12)} (current ${f.planHash.slice(0, 12)})`);
    }
    if (f.approvedBy.includes(by)) return ignore('duplicate approval');
  }
  return { verdict: 'accept' };
}

interface Fields {
  by: string;
  planHash?: string;
  comment?: string;
  reason?: string;
  signed: boolean;
}

function judgeV2(decision: Decision, signal: Record<string, unknown>, x: Fields, f: GateFacts): Verdict {
  if (!x.by) return ignore('missing "by"');
  if (x.by.length > DECISION_LIMITS.by) return ignore(`"by" is longer than ${DECISION_LIMITS.by} characters`);
  if ((x.comment?.length ?? 0) > DECISION_LIMITS.comment) {
    return ignore(`"comment" is longer than ${DECISION_LIMITS.comment} characters`);
  }
  if ((x.reason?.length ?? 0) > DECISION_LIMITS.reason) {
    return ignore(`"reason" is longer than ${DECISION_LIMITS.reason} characters`);
  }
  const policy = f.policy;
  const who = whoMayDecide(decision, x.by, f);
  if (who) return ignore(who);

  if (decision !== 'abort' && (!f.gateOpen || !policy || !f.planHash)) return ignore('no approval is pending');
  if (decision === 'approve') {
    if (!policy!.allowSelfApproval && canonicalName(x.by) === canonicalName(f.requester)) {
      return ignore('the requester may not approve their own run');
    }
    if (!x.planHash) return ignore('missing planHash');
    if (!HEX_PREFIX.test(x.planHash)) return ignore('planHash must be at least 12 hex characters');
  }
  if (x.planHash && f.planHash && !f.planHash.startsWith(x.planHash)) {
    const other = f.stagePlans?.find((p) => p.planHash.startsWith(x.planHash!));
    // an abort may name any plan of this run; approve and reject count only for the stage waiting
    if (other && decision !== 'abort') {
      return ignore(
        `plan ${x.planHash.slice(0, 12)} is stage "${other.stage}"'s, not the waiting stage ${f.stage ? `"${f.stage}"` : '(none)'}'s`,
      );
    }
    if (!other) return ignore(`stale plan hash ${x.planHash.slice(0, 12)} (current ${f.planHash.slice(0, 12)})`);
  }
  if (!x.signed && policy?.requireSignatures) {
    return ignore(`unsigned: this environment requires signed decisions (runbook ${decision} signs with your key)`);
  }
  // a replayed signed decision is named as such, before it would count as a duplicate
  const signature = x.signed ? judgeSignature(decision, signal, x, f) : undefined;
  if (signature?.verdict === 'ignore') return signature;
  if (decision === 'approve' && inList(f.approvedBy, x.by)) return ignore('duplicate approval');
  // two approvals count only with two distinct keys
  if (signature?.verdict === 'verify' && decision === 'approve' && f.usedKeys.includes(signature.key.keyId)) {
    return ignore(`key ${signature.key.keyId} already approved`);
  }
  return signature ?? { verdict: 'accept' };
}

/** Approvers approve and reject (the requester may reject too); abortBy (default approvers + requester) aborts. */
function whoMayDecide(decision: Decision, by: string, f: GateFacts): string | undefined {
  if (decision === 'abort' && f.ending) return 'the run is already ending';
  const policy = f.policy;
  if (!policy) return decision === 'abort' ? undefined : 'no approval is pending';
  const isRequester = canonicalName(by) === canonicalName(f.requester);
  if (decision === 'approve') {
    return policy.approvers.length > 0 && !inList(policy.approvers, by)
      ? `${by} is not an allowed approver`
      : undefined;
  }
  if (decision === 'reject') {
    if (policy.approvers.length === 0 || isRequester || inList(policy.approvers, by)) return undefined;
    return `${by} may not reject: only the approvers or the requester`;
  }
  if (policy.abortBy) return inList(policy.abortBy, by) ? undefined : `${by} may not abort (abortBy)`;
  if (policy.approvers.length === 0 || isRequester || inList(policy.approvers, by)) return undefined;
  return `${by} may not abort: only the approvers or the requester`;
}

function judgeSignature(decision: Decision, signal: Record<string, unknown>, x: Fields, f: GateFacts): Verdict {
  const missing = SIGNED_FIELDS.filter((k) => typeof signal[k] !== 'string' || !signal[k]);
  if (missing.length) return ignore(`signed decision lacks ${missing.join(', ')}`);
  const s = signal as Record<(typeof SIGNED_FIELDS)[number], string>;
  if (s.workflowId !== f.workflowId) return ignore(`signed for workflow ${cut(s.workflowId, 80)}, not this one`);
  if (s.runId !== f.runId) return ignore(`signed for run ${cut(s.runId, 40)}, this is run ${f.runId}`);
  if (decision !== 'abort' && !(x.planHash && FULL_HASH.test(x.planHash))) {
    return ignore('a signed decision names the full 64-character plan hash');
  }
  const issued = Date.parse(s.issuedAt);
  if (!Number.isFinite(issued)) return ignore('issuedAt is not a timestamp');
  const ttl = f.policy?.signatureTtl ?? '15m';
  if (f.now - issued > parseDuration(ttl))
    return ignore(`expired: issued at ${s.issuedAt}, older than signatureTtl ${ttl}`);
  if (issued - f.now > FUTURE_SKEW_MS) return ignore(`issuedAt ${s.issuedAt} is in the future`);
  if (s.nonce.length > DECISION_LIMITS.nonce) return ignore(`nonce is longer than ${DECISION_LIMITS.nonce} characters`);
  if (f.usedNonces.has(s.nonce)) return ignore('nonce already used (a replayed decision)');
  const key = f.policy?.keys?.find((k) => k.keyId === s.keyId);
  if (!key) return ignore(`unknown key ${cut(s.keyId, 64)}`);
  if (canonicalName(key.name) !== canonicalName(x.by))
    return ignore(`key ${key.keyId} is ${key.name}'s, not ${x.by}'s`);
  if (f.verifications >= DECISION_LIMITS.verifications) {
    return ignore(`too many signed decisions to check (limit ${DECISION_LIMITS.verifications} per run)`);
  }
  const claims = claimsOf(decision, { ...(signal as unknown as DecisionSignal), by: x.by, planHash: x.planHash });
  return { verdict: 'verify', key, text: decisionSigningText(claims), signature: s.signature, nonce: s.nonce };
}

/**
 * After a signature verified (the gate awaited an activity meanwhile, so other decisions may have landed):
 * whether the decision still counts.
 */
export function stillCounts(
  decision: Decision,
  by: string,
  keyId: string,
  f: GateFacts,
  judgedFor?: string,
): string | undefined {
  if (decision === 'abort') return f.ending ? 'the run is already ending' : undefined;
  if (!f.gateOpen) return 'no approval is pending';
  // per-stage approvals: the stage it was judged for closed while its signature was checked
  if (judgedFor !== undefined && f.planHash !== judgedFor) {
    return `the stage it was for is no longer waiting${f.stage ? ` (now "${f.stage}")` : ''}`;
  }
  if (decision === 'approve') {
    if (inList(f.approvedBy, by)) return 'duplicate approval';
    if (f.usedKeys.includes(keyId)) return `key ${keyId} already approved`;
  }
  return undefined;
}
