import { describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { parseRunbookInput, tightenApproval, tightenDuration, tightenLimit } from '../src/shared/input.js';
import { approvalPolicySchema, featureFlagRollbackInputSchema, describeZodError } from '../src/shared/schemas.js';
import type { ApprovalPolicy } from '../src/shared/types.js';

const env: ApprovalPolicy = {
  approvers: ['alice', 'bob', 'carol'],
  quorum: 2,
  allowSelfApproval: false,
  timeout: '1h',
};
const failure = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return err as ApplicationFailure;
  }
  throw new Error('no failure');
};

describe('input may only tighten the environment policy', () => {
  it('keeps the environment policy when the input says nothing, and takes a tighter one', () => {
    expect(tightenApproval(env)).toEqual(env);
    expect(tightenApproval(env, { quorum: 3, timeout: '10m' })).toEqual({ ...env, quorum: 3, timeout: '10m' });
    expect(tightenLimit('batchSize', 500, 100)).toBe(100);
    expect(tightenDuration('lockWait', '15m', '1m')).toBe('1m');
  });

  it('refuses a looser value as InvalidInput naming the field, non-retryable', () => {
    const cases: Array<[() => unknown, string]> = [
      [() => tightenApproval(env, { quorum: 1 }), "approval.quorum: 1 is below the environment's 2"],
      [() => tightenApproval(env, { quorum: 4 }), 'approval.quorum: 4 exceeds the 3 approvers of the environment'],
      [() => tightenApproval(env, { timeout: '2h' }), "approval.timeout: 2h is longer than the environment's 1h"],
      [() => tightenLimit('batchSize', 500, 501), "batchSize: 501 exceeds the environment's 500"],
      [() => tightenDuration('lockWait', '15m', '16m'), "lockWait: 16m is longer than the environment's 15m"],
    ];
    for (const [fn, message] of cases) {
      const err = failure(fn);
      expect(err).toBeInstanceOf(ApplicationFailure);
      expect(err).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
      expect(err.message).toContain(message);
    }
  });
});

describe('durations are finite and bounded', () => {
  const base = { environment: 'demo', target: 'web', requester: 'rita', mode: 'disable-dual-write' };
  it.each([
    [{ approval: { timeout: '8d' } }, 'approval.timeout: must be at most 7d'],
    [{ approval: { timeout: `${'9'.repeat(400)}d` } }, 'approval.timeout: must be a duration'],
    [{ quietWindow: '500ms' }, 'quietWindow: must be at least 1s'],
    [{ quietWindow: '8d' }, 'quietWindow: must be at most 7d'],
    [{ lockWait: '1e9' }, 'lockWait: must be a duration'],
  ])('%j is refused: %s', (input, message) => {
    const err = failure(() => parseRunbookInput(featureFlagRollbackInputSchema, { ...base, ...input }));
    expect(err).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    expect(err.message).toContain(message);
  });

  it('environment files too: a policy timeout past 7 days, a signature TTL under 10s', () => {
    const parsed = approvalPolicySchema.safeParse({ timeout: '30d', signatureTtl: '1s' });
    expect(parsed.success).toBe(false);
    expect(describeZodError(parsed.error!)).toBe('timeout: must be at most 7d; signatureTtl: must be at least 10s');
  });
});
