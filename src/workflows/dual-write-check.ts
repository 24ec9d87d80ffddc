import type { CheckResult, createDualWriteActivities } from '../activities/dual-write/index.js';
import { parseRunbookInput, tightenApproval } from '../shared/input.js';
import { dualWriteCheckInputSchema, type DualWriteCheckInput } from '../shared/schemas.js';
import type { RunbookResult } from '../shared/types.js';
import { driftCounts } from './dual-write-repair.js';
import { runbookActivities } from './engine/activity-options.js';
import { Runbook } from './engine/runbook.js';
import { workflowInfo } from '@temporalio/workflow';

type DualWriteActivities = ReturnType<typeof createDualWriteActivities>;

const quick = runbookActivities<DualWriteActivities>('quick');
const long = runbookActivities<DualWriteActivities>('long');

export const DUAL_WRITE_CHECK_STEPS = ['load environment', 'seal plan', 'detect', 'notify'] as const;

/**
 * The consistency check that runs by itself (seed: dual-write rollback, "Alerting Integration" and "Escalation
 * Path"): detection only — no approval, no change to either store. It compares the pair against the segment
 * summaries the last check kept (only what changed is compared again), sets `dual_write_inconsistency_detected`
 * (0 when consistent), and routes a notification by severity: warning → the environment's warning channels,
 * critical → its critical channels and a page. The same finding twice in a row is not sent again; the first clean
 * check after a finding sends "resolved" to the warning channels. A repair is `dual-write-rollback`, by a person.
 */
export async function dualWriteCheck(rawInput: DualWriteCheckInput): Promise<RunbookResult> {
  const input = parseRunbookInput(dualWriteCheckInputSchema, rawInput);
  const info = workflowInfo();
  const ref = { environment: input.environment, target: input.target, runKey: `${info.workflowId}-${info.runId}` };
  const rb = new Runbook({
    runbook: 'dual-write-check',
    environment: input.environment,
    target: input.target,
    requester: input.requester,
    reason: input.reason,
    dryRun: input.dryRun,
    steps: DUAL_WRITE_CHECK_STEPS,
    lockWait: input.lockWait,
  });
  const extra: Record<string, unknown> = {};
  const where = `${input.environment}/${input.target}`;

  return rb.run(
    async () => {
      const dw = await rb.step('load environment', () => quick.describeDualWrite(ref), {
        summarize: (d) => `${d.labels.a}: ${d.a}; ${d.labels.b}: ${d.b}`,
      });
      rb.usePolicy(tightenApproval(dw.approval, input.approval), dw.escalation);
      // (histories recorded before incremental.tracking existed have no `incremental` in this result)
      const tracking = dw.incremental?.tracking === 'trigger';
      await rb.seal({
        summary: `compare ${dw.labels.a} and ${dw.labels.b} of ${where} (detection only: nothing is changed); ${
          tracking
            ? 're-check the keys the stores marked changed (every segment summed when that tracking is unusable)'
            : 're-check by summing every segment'
        }; set dual_write_inconsistency_detected; notify by severity`,
        changes: [],
        details: {
          a: dw.a,
          b: dw.b,
          criticalCount: dw.severity.criticalCount,
          ...(dw.incremental ? { incremental: dw.incremental } : {}),
          reason: input.reason,
        },
      });
      const r: CheckResult = await rb.step('detect', () => long.checkDrift(ref), {
        summarize: (c) =>
          `${c.total} differ (${driftCounts(c)}); severity ${c.severity}; ${
            !c.stats
              ? `${c.mode}: ${c.why}`
              : c.mode === 'tracked'
                ? `tracked: ${c.stats.keys} keys marked changed read on both sides; ${c.stats.segments} segments, ${c.stats.changed} touched, ${c.stats.reused} kept`
                : `${c.mode}${c.why ? ` (${c.why})` : ''}: ${c.stats.segments} segments, ${c.stats.changed} changed, ${c.stats.compared} compared row by row, ${c.stats.reused} kept`
          }`,
      });
      extra.detection = r;
      extra.severity = r.severity;
      rb.publish('inconsistent', r.total);
      rb.publish('severity', r.severity);

      const route = dw.severityRouting;
      const prev = r.previous;
      const sameAsBefore = prev && prev.severity === r.severity && prev.total === r.total;
      if (r.severity === 'none' && (!prev || prev.severity === 'none')) {
        rb.skip('notify', 'consistent');
        return;
      }
      if (r.severity !== 'none' && sameAsBefore) {
        rb.skip('notify', `unchanged since the check of ${prev.checkedAt}: ${r.total} differ, ${r.severity}`);
        return;
      }
      await rb.step(
        'notify',
        async () => {
          const sent: string[] = [];
          const note = (ok: boolean, what: string) => sent.push(ok ? what : `${what}: delivery failed`);
          if (r.severity === 'none') {
            const ok = await rb.notify(
              `[resolved] dual-write ${where}: consistent again`,
              `The dual-write check of ${where} found no differences (the previous check found ${prev!.total}, ${prev!.severity}).`,
              route.warning.channels,
            );
            note(ok, `resolved → ${route.warning.channels.join(', ') || 'all channels'}`);
            return sent.join('; ');
          }
          const subject = `[${r.severity}] dual-write ${where}: ${r.total} objects differ`;
          const text =
            `${r.total} objects differ between ${dw.labels.a} and ${dw.labels.b} on ${where} (${driftCounts(r)}); ` +
            `severity ${r.severity} (critical from ${dw.severity.criticalCount}). Nothing was changed. ` +
            `Repair: runbook start dual-write-rollback --env ${input.environment} --target ${input.target} --policy <policy>. ` +
            `Workflow ${info.workflowId}.`;
          const channels = r.severity === 'critical' ? route.critical.channels : route.warning.channels;
          note(await rb.notify(subject, text, channels), `${r.severity} → ${channels.join(', ') || 'all channels'}`);
          if (r.severity === 'critical') {
            if (route.critical.page.length)
              note(
                await rb.notify(`[PAGE] ${subject}`, text, route.critical.page),
                `page → ${route.critical.page.join(', ')}`,
              );
            else sent.push('no page: severityRouting.critical.page names no channel');
          }
          return sent.join('; ');
        },
        { summarize: (s) => s },
      );
    },
    () => extra,
  );
}
