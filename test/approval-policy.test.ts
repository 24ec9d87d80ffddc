import { describe, expect, it } from 'vitest';
import { generateKeyPair, signText, verifyText } from '../src/activities/keys.js';
import {
  claimsOf,
  decisionSigningText,
  DECISION_LIMITS,
  type Decision,
  type DecisionSignal,
} from '../src/shared/decisions.js';
import { canonicalName, sameName } from '../src/shared/names.js';
import type { ApprovalPolicy } from '../src/shared/types.js';
import { judgeDecision, stillCounts, type GateFacts } from '../src/workflows/engine/approval-policy.js';

/** The approval policy is a pure function: no server, no workflow sandbox. */

const alice = generateKeyPair();
const bob = generateKeyPair();
const mallory = generateKeyPair();
const PLAN = 'ab'.repeat(32);
const NOW = Date.parse('2026-11-26T10:00:00.000Z');

const policy = (over: Partial<ApprovalPolicy> = {}): ApprovalPolicy => ({
  approvers: ['alice', 'bob'],
  quorum: 2,
  allowSelfApproval: false,
  timeout: '1h',
  requireSignatures: true,
  signatureTtl: '15m',
  keys: [
    { name: 'alice', publicKey: alice.publicKey, keyId: alice.keyId },
    { name: 'bob', publicKey: bob.publicKey, keyId: bob.keyId },
  ],
  ...over,
});

const facts = (over: Partial<GateFacts> = {}): GateFacts => ({
  rules: 'v2',
  now: NOW,
  workflowId: 'wf-1',
  runId: 'run-1',
  requester: 'rita',
  planHash: PLAN,
  gateOpen: true,
  ending: false,
  policy: policy(),
  approvedBy: [],
  usedKeys: [],
  usedNonces: new Set(),
  verifications: 0,
  ...over,
});

/** A decision as `runbook approve` signs it; `over` changes what is sent after signing (a forgery). */
function signed(
  decision: Decision,
  by: string,
  key = by === 'bob' ? bob : alice,
  claims: Partial<DecisionSignal> = {},
  over: Partial<DecisionSignal> = {},
): DecisionSignal {
  const unsigned: DecisionSignal = {
    by,
    planHash: PLAN,
    workflowId: 'wf-1',
    runId: 'run-1',
    issuedAt: new Date(NOW - 60_000).toISOString(),
    nonce: `n-${Math.random()}`,
    keyId: key.keyId,
    ...claims,
  };
  return { ...unsigned, signature: signText(key, decisionSigningText(claimsOf(decision, unsigned))), ...over };
}

const judge = (decision: Decision, signal: unknown, f = facts()) => judgeDecision(decision, signal, f, 'now');
const reason = (decision: Decision, signal: unknown, f = facts()) => {
  const { verdict } = judge(decision, signal, f);
  return verdict.verdict === 'ignore' ? verdict.reason : verdict.verdict;
};

describe('canonical names', () => {
  it('makes case, width, zero-width characters and spacing one person', () => {
    for (const variant of ['Alice', 'ALICE', 'alice\u200b', '\u200balice', 'ａｌｉｃｅ', ' alice ', 'al\u00adice']) {
      expect(canonicalName(variant), JSON.stringify(variant)).toBe('alice');
    }
    expect(sameName('Straße', 'STRASSE')).toBe(true);
    expect(sameName('alice', 'alicf')).toBe(false);
    expect(canonicalName('Mary  Ann')).toBe('mary ann');
  });
});

describe('judgeDecision (engine v2)', () => {
  it('a valid signed approval goes to signature verification, with the exact signed text', () => {
    const s = signed('approve', 'alice');
    const { verdict, record } = judge('approve', s);
    expect(verdict.verdict).toBe('verify');
    if (verdict.verdict !== 'verify') return;
    expect(verdict.key.keyId).toBe(alice.keyId);
    expect(verifyText(alice.publicKey, verdict.text, verdict.signature)).toBe(true);
    expect(record).toMatchObject({ kind: 'approve', by: 'alice', auth: 'signed', keyId: alice.keyId, nonce: s.nonce });
  });

  it('a forged signature (claims changed after signing) does not verify', () => {
    const forged = signed('approve', 'alice', alice, {}, { comment: 'added later' });
    const { verdict } = judge('approve', forged);
    expect(verdict.verdict).toBe('verify');
    if (verdict.verdict === 'verify') expect(verifyText(alice.publicKey, verdict.text, verdict.signature)).toBe(false);
    // an approve signature replayed as a reject
    const approval = signed('approve', 'alice');
    const asReject = judge('reject', approval);
    if (asReject.verdict.verdict === 'verify') {
      expect(verifyText(alice.publicKey, asReject.verdict.text, asReject.verdict.signature)).toBe(false);
    }
  });

  it('ignores, with the reason, every way a signed decision can be wrong', () => {
    const cases: Array<[string, DecisionSignal, GateFacts?]> = [
      ['signed for run other-run, this is run run-1', signed('approve', 'alice', alice, { runId: 'other-run' })],
      ['signed for workflow wf-2, not this one', signed('approve', 'alice', alice, { workflowId: 'wf-2' })],
      [
        `stale plan hash ${'cd'.repeat(6)} (current ${PLAN.slice(0, 12)})`,
        signed('approve', 'alice', alice, { planHash: 'cd'.repeat(32) }),
      ],
      [
        'a signed decision names the full 64-character plan hash',
        signed('approve', 'alice', alice, { planHash: PLAN.slice(0, 16) }),
      ],
      [
        `expired: issued at ${new Date(NOW - 16 * 60_000).toISOString()}, older than signatureTtl 15m`,
        signed('approve', 'alice', alice, { issuedAt: new Date(NOW - 16 * 60_000).toISOString() }),
      ],
      [
        `issuedAt ${new Date(NOW + 10 * 60_000).toISOString()} is in the future`,
        signed('approve', 'alice', alice, { issuedAt: new Date(NOW + 10 * 60_000).toISOString() }),
      ],
      ['issuedAt is not a timestamp', signed('approve', 'alice', alice, { issuedAt: 'yesterday' })],
      [
        'nonce already used (a replayed decision)',
        signed('approve', 'alice', alice, { nonce: 'seen' }),
        facts({ usedNonces: new Set(['seen']) }),
      ],
      [`unknown key ${mallory.keyId}`, signed('approve', 'alice', mallory)],
      [`key ${bob.keyId} is bob's, not alice's`, signed('approve', 'alice', bob)],
      ['signed decision lacks signature', signed('approve', 'alice', alice, {}, { signature: undefined, nonce: 'x' })],
      [
        `key ${alice.keyId} already approved`,
        signed('approve', 'alice', alice),
        facts({ usedKeys: [alice.keyId], approvedBy: [] }),
      ],
      [
        `too many signed decisions to check (limit ${DECISION_LIMITS.verifications} per run)`,
        signed('approve', 'alice'),
        facts({ verifications: DECISION_LIMITS.verifications }),
      ],
    ];
    for (const [expected, signal, f] of cases) expect(reason('approve', signal, f), expected).toBe(expected);
  });

  it('requires signatures where the environment says so, and marks unsigned decisions where it does not', () => {
    const unsigned = { by: 'alice', planHash: PLAN.slice(0, 12) };
    expect(reason('approve', unsigned)).toBe(
      'unsigned: this environment requires signed decisions (runbook approve signs with your key)',
    );
    const open = facts({ policy: policy({ requireSignatures: false }) });
    expect(judge('approve', unsigned, open)).toMatchObject({
      verdict: { verdict: 'accept' },
      record: { auth: 'unsigned' },
    });
    expect(reason('abort', { by: 'bob', reason: 'x' })).toMatch(/^unsigned: /);
  });

  it('compares names in canonical form: approvers, duplicates and the requester', () => {
    const open = facts({ policy: policy({ requireSignatures: false }), approvedBy: ['alice'] });
    for (const by of ['Alice', 'alice\u200b', 'ＡＬＩＣＥ'])
      expect(reason('approve', { by, planHash: PLAN }, open)).toBe('duplicate approval');
    const requester = facts({ policy: policy({ requireSignatures: false, approvers: ['alice', 'Rita'] }) });
    expect(reason('approve', { by: 'RITA\u200b', planHash: PLAN }, requester)).toBe(
      'the requester may not approve their own run',
    );
    expect(reason('approve', { by: 'mallory', planHash: PLAN }, open)).toBe('mallory is not an allowed approver');
    expect(reason('approve', { by: 'BOB', planHash: PLAN }, open)).toBe('accept');
  });

  it('honours reject and abort only from approvers or the requester (abortBy when given)', () => {
    const open = facts({ policy: policy({ requireSignatures: false }) });
    expect(reason('reject', { by: 'mallory' }, open)).toBe(
      'mallory may not reject: only the approvers or the requester',
    );
    expect(reason('reject', { by: 'Rita' }, open)).toBe('accept');
    expect(reason('abort', { by: 'mallory', reason: 'x' }, open)).toBe(
      'mallory may not abort: only the approvers or the requester',
    );
    expect(reason('abort', { by: 'bob', reason: 'x' }, open)).toBe('accept');
    const abortBy = facts({ policy: policy({ requireSignatures: false, abortBy: ['oncall'] }) });
    expect(reason('abort', { by: 'bob', reason: 'x' }, abortBy)).toBe('bob may not abort (abortBy)');
    expect(reason('abort', { by: 'OnCall', reason: 'x' }, abortBy)).toBe('accept');
    expect(reason('abort', { by: 'bob', reason: 'x' }, { ...open, ending: true })).toBe('the run is already ending');
    // a signed abort binds the run, not a plan: also before the plan exists
    expect(
      reason(
        'abort',
        signed('abort', 'bob', bob, { planHash: undefined, reason: 'stop' }),
        facts({ planHash: undefined, gateOpen: false }),
      ),
    ).toBe('verify');
  });

  it('bounds what a signal may carry', () => {
    const open = facts({ policy: policy({ requireSignatures: false, approvers: [] }) });
    expect(reason('approve', { by: 'x'.repeat(65), planHash: PLAN }, open)).toBe('"by" is longer than 64 characters');
    expect(judge('approve', { by: 'x'.repeat(65), planHash: PLAN }, open).record.by).toHaveLength(65);
    expect(reason('approve', { by: 'carol', planHash: PLAN, comment: 'c'.repeat(1001) }, open)).toBe(
      '"comment" is longer than 1000 characters',
    );
    expect(
      judge('approve', { by: 'carol', planHash: PLAN, comment: 'c'.repeat(5000) }, open).record.comment,
    ).toHaveLength(1001);
    expect(reason('approve', 'not an object', open)).toBe('missing "by"');
    expect(reason('approve', { by: 42, planHash: PLAN }, open)).toBe('missing "by"');
    expect(reason('approve', { by: 'carol', planHash: 'xyz' }, open)).toBe(
      'planHash must be at least 12 hex characters',
    );
  });

  it('counts approvals and rejections only while the gate waits', () => {
    expect(reason('approve', signed('approve', 'alice'), facts({ gateOpen: false }))).toBe('no approval is pending');
    expect(stillCounts('approve', 'alice', alice.keyId, facts({ approvedBy: ['ALICE'] }))).toBe('duplicate approval');
    expect(stillCounts('approve', 'alice', alice.keyId, facts({ gateOpen: false }))).toBe('no approval is pending');
    expect(stillCounts('approve', 'alice', alice.keyId, facts())).toBeUndefined();
  });
});

describe('judgeDecision with per-stage approvals', () => {
  const LEVEL1 = 'cd'.repeat(32);
  const stages = (over: Partial<GateFacts> = {}) =>
    facts({
      stage: 'level 2 approval',
      stagePlans: [
        { stage: 'level 1 approval', planHash: LEVEL1 },
        { stage: 'level 2 approval', planHash: PLAN },
      ],
      ...over,
    });

  it("a decision signed for one stage's plan does not count for the stage waiting, and says whose plan it names", () => {
    const forLevel1 = signed('approve', 'alice', alice, { planHash: LEVEL1 });
    expect(reason('approve', forLevel1, stages())).toBe(
      `plan ${LEVEL1.slice(0, 12)} is stage "level 1 approval"'s, not the waiting stage "level 2 approval"'s`,
    );
    expect(reason('reject', signed('reject', 'alice', alice, { planHash: LEVEL1 }), stages())).toMatch(
      /is stage "level 1 approval"'s/,
    );
    expect(reason('approve', signed('approve', 'alice'), stages())).toBe('verify');
  });

  it("an abort may name any stage's plan of the run (stopping is never harder than approving)", () => {
    const f = stages({ planHash: 'ef'.repeat(32), stage: undefined, gateOpen: false });
    expect(reason('abort', signed('abort', 'alice', alice, { planHash: LEVEL1, reason: 'stop' }), f)).toBe('verify');
    expect(reason('abort', signed('abort', 'alice', alice, { planHash: '01'.repeat(32), reason: 'x' }), f)).toMatch(
      /^stale plan hash/,
    );
  });

  it('a verified approval no longer counts when the stage it was judged for closed meanwhile', () => {
    expect(stillCounts('approve', 'alice', alice.keyId, stages({ planHash: LEVEL1 }), PLAN)).toBe(
      'the stage it was for is no longer waiting (now "level 2 approval")',
    );
    expect(stillCounts('approve', 'alice', alice.keyId, stages(), PLAN)).toBeUndefined();
    expect(stillCounts('abort', 'alice', alice.keyId, stages({ planHash: LEVEL1 }), PLAN)).toBeUndefined();
  });
});

describe('judgeDecision (engine v1, runs from before signed approvals)', () => {
  const v1 = (over: Partial<GateFacts> = {}) =>
    facts({
      rules: 'v1',
      policy: { approvers: ['alice', 'bob'], quorum: 1, allowSelfApproval: false, timeout: '1h' },
      ...over,
    });
  it('keeps the old rules so old histories replay: exact names, no signatures, abort unchecked', () => {
    expect(reason('approve', { by: 'alice', planHash: PLAN.slice(0, 12) }, v1())).toBe('accept');
    expect(reason('approve', { by: 'Alice', planHash: PLAN }, v1())).toBe('Alice is not an allowed approver');
    expect(reason('abort', { by: 'anyone', reason: 'x' }, v1())).toBe('accept');
    expect(judge('approve', { by: 'alice', planHash: PLAN }, v1()).record.auth).toBeUndefined();
  });
});
