import { resultLines } from '../activities/evidence/report.js';
import type { RunbookStatus } from '../shared/types.js';

const ICON: Record<string, string> = {
  pending: '·',
  running: '▶',
  succeeded: '✔',
  failed: '✘',
  skipped: '○',
  compensated: '↺',
};

/** The human view of `status`: header, steps, plan, approvals, escalations, compensations. */
export function formatStatus(s: RunbookStatus): string {
  const lines = [
    `${s.runbook}  ${s.environment}/${s.target}  ${s.workflowId}`,
    `requested by ${s.requester}: ${s.reason}${s.dryRun ? '  [DRY RUN]' : ''}`,
    `phase ${s.phase}${s.currentStep ? `, current step: ${s.currentStep}` : ''}${s.outcome ? `, outcome: ${s.outcome.toUpperCase()}` : ''}`,
    '',
    'steps:',
    ...s.steps.map(
      (step) =>
        `  ${ICON[step.status] ?? '?'} ${step.name.padEnd(24)} ${step.status.padEnd(11)}${step.result ? ` ${step.result}` : ''}${step.error ? ` — ${step.error}` : ''}`,
    ),
  ];
  if (s.plan) {
    lines.push('', `plan ${s.planHash ?? ''}`, `  ${s.plan.summary}`);
    for (const c of s.plan.changes) lines.push(`  - ${c.item}: ${c.from ?? '(unset)'} → ${c.to ?? '(unset)'}`);
  }
  const policy = s.approval.policy;
  if (policy) {
    const who = `approvers: ${policy.approvers.join(', ') || 'anyone'}; timeout ${policy.timeout}`;
    lines.push(
      '',
      // per-stage approvals: each stage has its own quorum (below); the run's policy judges aborts
      s.approval.stages?.length
        ? `approvals per stage (approval stages, below); aborts by the run's policy: ${who}`
        : `approvals ${s.approval.approvedBy.length}/${policy.quorum}${s.approval.waiting ? ' (waiting)' : ''}; ${who}`,
    );
    if (policy.requireSignatures) lines.push('  decisions must be signed (requireSignatures)');
    for (const r of s.approval.records) {
      const stage = r.stage ? ` [${r.stage}]` : '';
      const auth = r.auth === 'signed' ? `signed, key ${r.keyId}` : 'unsigned';
      const note = r.comment ?? r.reason;
      lines.push(
        `  ${r.at} ${r.kind}${stage} by ${r.by} [${auth}]: ${r.accepted ? 'accepted' : `ignored (${r.ignoredBecause})`}${note ? ` — ${note}` : ''}`,
      );
    }
    if (s.approval.dropped) lines.push(`  … ${s.approval.dropped} more ignored decisions counted, not kept`);
  }
  if (s.approval.stages?.length) lines.push('', 'approval stages:', ...stageLines(s));
  if (s.locks?.length) {
    lines.push('', 'target locks:');
    for (const l of s.locks) {
      const holder = l.holder ? ` behind ${l.holder.workflowId} (${l.holder.runbook})` : '';
      lines.push(`  ${l.environment}/${l.target}: ${l.state}${holder}`);
    }
  }
  if (s.escalation.history.length) {
    lines.push('', `escalation level ${s.escalation.level}`);
    for (const e of s.escalation.history)
      lines.push(
        `  L${e.level} ${e.at} ${e.reason}${e.contact ? ` → ${e.contact}` : ''}${e.delivered ? '' : ` (not delivered${e.error ? `: ${e.error}` : ''})`}`,
      );
  }
  if (s.compensations.length) {
    lines.push('', 'compensations:');
    for (const c of s.compensations)
      lines.push(
        `  ${c.status === 'succeeded' ? '↺' : c.status === 'kept' ? '=' : '✘'} undo ${c.step}: ${c.status}${c.error ? ` — ${c.error}` : ''}${c.reason ? ` — ${c.reason}` : ''}`,
      );
  }
  const results = resultLines(s.results);
  if (results.length) lines.push('', 'results:', ...results.map((l) => `  ${l}`));
  if (s.abort) lines.push('', `abort requested by ${s.abort.by} at ${s.abort.at}: ${s.abort.reason}`);
  if (s.error) lines.push('', `error: ${s.error}`);
  return lines.join('\n');
}

/** Per-stage approvals: each stage's policy, how it stands, and its plan (the waiting one in full). */
function stageLines(s: RunbookStatus): string[] {
  const lines: string[] = [];
  for (const stage of s.approval.stages ?? []) {
    const p = stage.policy;
    const policy =
      p === 'automatic'
        ? 'automatic'
        : `${stage.approvedBy.length}/${p.quorum} of ${p.approvers.join(', ') || 'anyone'}, timeout ${p.timeout}${p.requireSignatures ? ', signed' : ''}`;
    const waiting = stage.status === 'waiting' ? '  ← WAITING' : '';
    lines.push(`  ${stage.stage}: ${stage.status} (${policy}) plan ${stage.planHash}${waiting}`);
    if (stage.status === 'waiting') {
      lines.push(`    ${stage.plan.summary}`);
      for (const c of stage.plan.changes) lines.push(`    - ${c.item}: ${c.from ?? '(unset)'} → ${c.to ?? '(unset)'}`);
    }
  }
  return lines;
}
