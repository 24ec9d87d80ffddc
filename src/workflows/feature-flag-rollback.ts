import type { createFlagActivities } from '../activities/flags.js';
import { rollbackNotification } from '../shared/communication.js';
import { parseDuration } from '../shared/duration.js';
import { parseRunbookInput, tightenApproval } from '../shared/input.js';
import {
  featureFlagRollbackInputSchema,
  type FeatureFlagRollbackInput,
  type FeatureFlagRollbackParams,
  type FlagKey,
} from '../shared/schemas.js';
import type { Plan, RunbookResult } from '../shared/types.js';
import { runbookActivities } from './engine/activity-options.js';
import { Runbook } from './engine/runbook.js';
import { restoreFlags } from './flag-undo.js';

type FlagActivities = ReturnType<typeof createFlagActivities>;

const acts = runbookActivities<FlagActivities>('quick');
const verify = runbookActivities<FlagActivities>('verify');

/** Scenarios 1, 2 and 5 of the seed: which flags change to what. */
export const MODE_CHANGES: Record<FeatureFlagRollbackParams['mode'], Partial<Record<FlagKey, string>>> = {
  'disable-dual-write': { dualWriteEnabled: 'false' },
  'disable-strict-mode': { strictMode: 'false' },
  'block-legacy-writes': { legacyWriteBlocked: 'true', dualWriteEnabled: 'false' },
  'enable-dual-write': { dualWriteEnabled: 'true' },
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
] as const;

/** enable-dual-write: instead of a quiet log, a soak (health for a window, dual writes seen again) */
export const ENABLE_DUAL_WRITE_STEPS = [
  ...FEATURE_FLAG_STEPS.slice(0, FEATURE_FLAG_STEPS.indexOf('verify no dual writes')),
  'soak',
  'notify',
] as const;

/**
 * Feature-flag dual-write rollback (seed: feature-flag-dual-write-rollback.md, scenarios 1, 2, 5):
 * read flags → plan → approval → set flags (undo: restore) → reload → verify live → health → quiet logs → notify.
 */
export async function featureFlagRollback(rawInput: FeatureFlagRollbackInput): Promise<RunbookResult> {
  const input = parseRunbookInput(featureFlagRollbackInputSchema, rawInput);
  const ref = { environment: input.environment, target: input.target };
  const rb = new Runbook({
    runbook: 'feature-flag-rollback',
    ...ref,
    requester: input.requester,
    reason: input.reason,
    dryRun: input.dryRun,
    steps: input.mode === 'enable-dual-write' ? ENABLE_DUAL_WRITE_STEPS : FEATURE_FLAG_STEPS,
    lockWait: input.lockWait,
  });
  let notification: string | undefined;
  /** the flags as read when notifying: `runbook report --communication` shows them as the current state */
  let flagsAfter: Record<string, string | null> | undefined;

  return rb.run(
    async () => {
      const target = await rb.step('load environment', () => acts.describeTarget(ref), {
        summarize: (t) => `${t.flagStore}; ${t.service}`,
      });
      rb.usePolicy(tightenApproval(target.approval, input.approval), target.escalation);
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
      const changes = Object.entries(desired).map(([item, to]) => ({ item, from: previous[item] ?? null, to }));
      const plan: Plan = {
        summary: `${input.mode}: ${changes.map((c) => `${c.item} ${c.from ?? '(unset)'} → ${c.to}`).join(', ')} on ${input.environment}/${input.target}; ${target.serviceType} reload; verify ${quietWindow} without "${target.logPattern}"`,
        changes,
        details: {
          mode: input.mode,
          flagStore: target.flagStore,
          service: target.service,
          quietWindow,
          reason: input.reason,
          current: before,
        },
      };
      await rb.approval(plan, { childInput: rawInput });

      const action = target.serviceType === 'process' ? 'reload' : 'restart';
      await rb.step('set flags', () => acts.writeFlags({ ...ref, values: desired, expectCurrent: previous }), {
        summarize: (r) => (r.changed ? 'written' : 'already set'),
        // registered first: a failure between writing the flags and the end of the run puts them back
        undoBefore: () => restoreFlags(ref, previous, desired, action),
      });
      await rb.step('reload service', () => acts.reloadService({ ...ref, action }), { summarize: (r) => r.state });
      await rb.step('verify flags live', () => verify.verifyFlagsLive({ ...ref, expected: desired }), {
        summarize: (r) => (r.service ? 'store and service agree' : 'store agrees (no flags endpoint)'),
      });
      await rb.step('verify health', () => verify.checkHealth(ref), { summarize: (r) => `HTTP ${r.status}` });
      if (input.mode === 'enable-dual-write') {
        const soak = runbookActivities<FlagActivities>('verify', {
          startToCloseTimeout: parseDuration(quietWindow) * 5 + 60_000,
          heartbeatTimeout: '5s',
        });
        await rb.step('soak', () => soak.soakDualWrites({ ...ref, window: quietWindow }), {
          summarize: (r) =>
            `healthy for ${Math.round(r.healthyForMs / 1000)}s (${r.checks} checks), ${r.dualWritesSeen} dual writes seen`,
          expectedDuration: `${Math.round(parseDuration(quietWindow) * 1.5)}ms`,
        });
      } else if (target.logs) {
        const waitFor = runbookActivities<FlagActivities>('verify', {
          startToCloseTimeout: parseDuration(quietWindow) * 5 + 60_000,
          heartbeatTimeout: '5s',
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
          flagsAfter = Object.fromEntries(names.map((name) => [name, after[name] ?? null]));
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
        { summarize: (sent) => (sent ? 'sent' : 'delivery failed (see worker log)') },
      );
    },
    () => ({
      mode: input.mode,
      notification,
      ...(flagsAfter ? { flags: flagsAfter } : {}),
      ...(input.incidentTicket ? { incidentTicket: input.incidentTicket } : {}),
    }),
  );
}
