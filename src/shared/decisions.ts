import { canonicalJson } from './canonical-json.js';

/**
 * Approve, reject and abort are decisions a person sends as signals. Signed, a decision is bound to one run of
 * one workflow, one plan, one moment and one nonce; the signature covers exactly `decisionSigningText(claims)`.
 */
export const DECISIONS = ['approve', 'reject', 'abort'] as const;
export type Decision = (typeof DECISIONS)[number];

/** What a decision signal carries (every field is untrusted input: the workflow checks each one). */
export interface DecisionSignal {
  by: string;
  /** approve: the plan hash reviewed (unsigned: ≥ 12 hex chars of it; signed: all 64); reject/abort: optional */
  planHash?: string;
  /** approve and reject */
  comment?: string;
  /** abort */
  reason?: string;
  /** the signed form adds these (all strings; `runbook approve --print` shows one) */
  workflowId?: string;
  runId?: string;
  issuedAt?: string;
  nonce?: string;
  keyId?: string;
  /** Ed25519 signature of decisionSigningText(claims), base64 */
  signature?: string;
}

/** The facts a signature covers. */
export interface DecisionClaims {
  decision: Decision;
  workflowId: string;
  runId: string;
  planHash: string | null;
  by: string;
  comment: string | null;
  reason: string | null;
  issuedAt: string;
  nonce: string;
}

export const DECISION_SIGNATURE_CONTEXT = 'durable-runbooks/decision@1';

/** The exact bytes (UTF-8) that are signed and verified. */
export function decisionSigningText(claims: DecisionClaims): string {
  const { decision, workflowId, runId, planHash, by, comment, reason, issuedAt, nonce } = claims;
  return `${DECISION_SIGNATURE_CONTEXT}\n${canonicalJson({ decision, workflowId, runId, planHash, by, comment, reason, issuedAt, nonce })}`;
}

/** The claims a signal states for `decision` (the signal's name), as the signer built them. */
export function claimsOf(decision: Decision, signal: DecisionSignal): DecisionClaims {
  return {
    decision,
    workflowId: signal.workflowId ?? '',
    runId: signal.runId ?? '',
    planHash: signal.planHash ?? null,
    by: signal.by,
    comment: signal.comment ?? null,
    reason: signal.reason ?? null,
    issuedAt: signal.issuedAt ?? '',
    nonce: signal.nonce ?? '',
  };
}

/**
 * Bounds on what signals may carry, so a flood of signals cannot push a run past Temporal's payload or history
 * limits: longer fields make the decision ignored; past `records` ignored decisions are counted, not kept.
 */
export const DECISION_LIMITS = {
  by: 64,
  comment: 1000,
  reason: 1000,
  records: 200,
  /** signature checks (activities) per run: each costs history events */
  verifications: 200,
  nonce: 128,
} as const;

/** An Ed25519 public key as environment files hold it: `ed25519:` + the 32 raw key bytes in base64. */
export const PUBLIC_KEY_PATTERN = /^ed25519:[A-Za-z0-9+/]{43}=$/;
