import { ActivityCancellationType, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { createFlagActivities } from '../activities/flags.js';
import { NON_RETRYABLE_ERROR_TYPES, ErrorType } from '../shared/constants.js';
import { rollbackNotification } from '../shared/communication.js';
import { parseDuration } from '../shared/duration.js';
import {
  describeZodError,
  featureFlagRollbackInputSchema,
  type FeatureFlagRollbackInput,
  type FeatureFlagRollbackParams,
  type FlagKey,
} from '../shared/schemas.js';
import type { ApprovalPolicy, Plan, RunbookResult } from '../shared/types.js';
import { Runbook } from './engine/runbook.js';

type FlagActivities = ReturnType<typeof createFlagActivities>;

const retry = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '20s',
  nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
};
const cancellationType = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED;

const acts = proxyActivities<FlagActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { ...retry, maximumAttempts: 5 },
  cancellationType,
});
const verify = proxyActivities<FlagActivities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '10s',
  retry: { ...retry, maximumAttempts: 3 },
  cancellationType,
});
/** Undos get their own, more patient policy; what still fails is reported as compensation_failed. */
const undo = proxyActivities<FlagActivities>({
  startToCloseTimeout: '2 minutes',
  retry: {
    initialInterval: '500ms',
    backoffCoefficient: 2,
    maximumInterval: '5s',
    maximumAttempts: 4,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
});

/** Scenarios 1, 2 and 5 of the seed: which flags change to what. */
export const MODE_CHANGES: Record<FeatureFlagRollbackParams['mode'], Partial<Record<FlagKey, string>>> = {
  'disable-dual-write': { dualWriteEnabled: 'false' },
  'disable-strict-mode': { strictMode: 'false' },
  'block-legacy-writes': { legacyWriteBlocked: 'true', dualWriteEnabled: 'false' },
};

export const FEATURE_FLAG_STEPS = [
  'load environment',
  'read current flags',
  'seal plan',
  'approval',
  'set flags',
  'reload service',
  'verify flags live',
  'verify health',
  'verify no dual writes',
  'notify',
];

/**
 * Feature-flag dual-write rollback (seed: feature-flag-dual-write-rollback.md, scenarios 1, 2, 5):
 * read flags → plan → approval → set flags (undo: restore) → reload → verify live → health → quiet logs → notify.
 */
export async function featureFlagRollback(rawInput: FeatureFlagRollbackInput): Promise<RunbookResult> {
  const parsed = featureFlagRollbackInputSchema.safeParse(rawInput);
  if (!parsed.success)
    throw ApplicationFailure.nonRetryable(`invalid input: ${describeZodError(parsed.error)}`, ErrorType.InvalidInput);
  const input = parsed.data;
  const ref = { environment: input.environment, target: input.target };
  const rb = new Runbook({
    runbook: 'feature-flag-rollback',
    ...ref,
    requester: input.requester,
    reason: input.reason,
    dryRun: input.dryRun,
    steps: FEATURE_FLAG_STEPS,
  });
  let notification: string | undefined;

  return rb.run(
    async () => {
      const target = await rb.step('load environment', () => acts.describeTarget(ref), {
        summarize: (t) => `${t.flagStore}; ${t.service}`,
      });
      const names = Object.values(target.flagNames);
      const desired = Object.fromEntries(
        Object.entries(MODE_CHANGES[input.mode]).map(([key, value]) => [target.flagNames[key as FlagKey], value]),
      );
      const before = await rb.step('read current flags', () => acts.readFlags({ ...ref, names }), {
        summarize: (v) =>
          Object.entries(v)
            .map(([k, x]) => `${k}=${x ?? '(unset)'}`)
            .join(' '),
      });
      const previous = Object.fromEntries(Object.keys(desired).map((name) => [name, before[name] ?? null]));
      const quietWindow = input.quietWindow ?? target.quietWindow;
      const plan: Plan = {
        summary: `${input.mode}: ${Object.entries(desired)
          .map(([k, v]) => `${k} ${previous[k] ?? '(unset)'} → ${v}`)
          .join(
            ', ',
          )} on ${input.environment}/${input.target}; ${target.serviceType} reload; verify ${quietWindow} without "${target.logPattern}"`,
        changes: Object.entries(desired).map(([item, to]) => ({ item, from: previous[item] ?? null, to })),
        details: {
          mode: input.mode,
          flagStore: target.flagStore,
          service: target.service,
          quietWindow,
          reason: input.reason,
          current: before,
        },
      };
      const policy: ApprovalPolicy = {
        ...target.approval,
        quorum: Math.max(target.approval.quorum, input.approval?.quorum ?? 0),
        timeout: input.approval?.timeout ?? target.approval.timeout,
      };
      await rb.approval(plan, policy, target.escalation);

      const action = target.serviceType === 'process' ? 'reload' : 'restart';
      await rb.step('set flags', () => acts.writeFlags({ ...ref, values: desired, expectCurrent: previous }), {
        summarize: (r) => (r.changed ? 'written' : 'already set'),
        undo: async () => {
          await undo.writeFlags({ ...ref, values: previous });
          await undo.reloadService({ ...ref, action });
        },
      });
      await rb.step('reload service', () => acts.reloadService({ ...ref, action }), { summarize: (r) => r.state });
      await rb.step('verify flags live', () => verify.verifyFlagsLive({ ...ref, expected: desired }), {
        summarize: (r) => (r.service ? 'store and service agree' : 'store agrees (no flags endpoint)'),
      });
      await rb.step('verify health', () => verify.checkHealth(ref), { summarize: (r) => `HTTP ${r.status}` });
      if (target.logs) {
        const waitFor = proxyActivities<FlagActivities>({
          startToCloseTimeout: parseDuration(quietWindow) * 5 + 60_000,
          heartbeatTimeout: '5s',
          retry: { ...retry, maximumAttempts: 3 },
          cancellationType,
        });
        await rb.step('verify no dual writes', () => waitFor.waitForLogQuiet({ ...ref, window: quietWindow }), {
          summarize: (r) => `quiet for ${Math.round(r.quietForMs / 1000)}s (${r.linesSeen} lines before)`,
          // normally one window; the escalation ladder starts when it takes half a window longer
          expectedDuration: `${Math.round(parseDuration(quietWindow) * 1.5)}ms`,
        });
      } else {
        rb.skip('verify no dual writes', 'no log source configured for this target');
      }
      await rb.step(
        'notify',
        async () => {
          const after = await acts.readFlags({ ...ref, names });
          notification = rollbackNotification({
            date: new Date().toISOString(),
            environment: input.environment,
            target: input.target,
            mode: input.mode,
            reason: input.reason,
            flags: names.map((name) => ({ name, value: after[name] ?? null })),
            requester: input.requester,
            approvedBy: rb.state.approval.approvedBy,
            incidentTicket: input.incidentTicket,
            workflowId: rb.state.workflowId,
          });
          return rb.notify(`Dual-write rollback on ${input.environment}/${input.target}`, notification);
        },
        {
          summarize: (sent) => (sent ? 'sent' : 'delivery failed (see worker log)'),
        },
      );
    },
    () => ({ mode: input.mode, notification }),
  );
}
