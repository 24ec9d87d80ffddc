import { resultLines } from '../activities/evidence/report.js';
import { currentGate } from '../shared/approval-stages.js';
import type { RunbookStatus } from '../shared/types.js';

const ICON: Record<string, string> = {
  pending: '·',
  running: '▶',
  succeeded: '✔',
  failed: '✘',
  skipped: '○',
  compensated: '↺',
};

/** A child run as a parent (triage) publishes it under `results.children`. */
export interface ChildEntry {
  run?: string;
  workflowId: string;
  runbook: string;
  target: string;
  approval?: 'covered' | 'own';
  outcome: string;
  error?: string;
}

/** The children a run publishes (`results.children`), if any. */
export function childrenOf(s: RunbookStatus): ChildEntry[] {
  const list = s.results?.children;
  return Array.isArray(list)
    ? list.filter((c): c is ChildEntry => typeof (c as ChildEntry | null)?.workflowId === 'string')
    : [];
}

/** The child the run is waiting on now (running, still in the chain), if any. */
export const runningChild = (s: RunbookStatus): ChildEntry | undefined =>
  s.outcome ? undefined : childrenOf(s).find((c) => c.outcome === 'running');

/**
 * The human view of `status`: header, steps, plan, approvals, escalations, compensations; with `child` (the status
 * of the child the run waits on), what that child waits for — its own approval, with the commands that give it.
 */
export function formatStatus(s: RunbookStatus, child?: RunbookStatus): string {
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
  const children = childrenOf(s);
  const results = resultLines(
    Object.fromEntries(Object.entries(s.results ?? {}).filter(([k]) => !children.length || k !== 'children')),
  );
  if (results.length) lines.push('', 'results:', ...results.map((l) => `  ${l}`));
  if (children.length) lines.push('', 'children:', ...children.map(childLine));
  if (child) lines.push(...childWaitLines(s, child));
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

function childLine(c: ChildEntry): string {
  const approval =
    c.approval === 'own' ? ' (its own approval)' : c.approval === 'covered' ? " (covered by this run's approval)" : '';
  return `  ${c.run ? `run ${c.run} ` : ''}${c.runbook} on ${c.target}  ${c.workflowId}: ${c.outcome}${approval}${c.error ? ` — ${c.error}` : ''}`;
}

/**
 * What the running child waits for: its approval gate (plan, hash, how to approve or reject), or its step. `status`
 * shows it under the chain's status; `watch` prints it once when the chain starts waiting on the child's approval.
 */
export function childWaitLines(parent: RunbookStatus, child: RunbookStatus): string[] {
  const id = child.workflowId;
  if (!child.approval.waiting)
    return ['', `running child ${id} (${child.runbook}): ${child.currentStep ?? child.phase}`];
  const gate = currentGate(child);
  const plan = gate.stage ? child.approval.stages?.find((x) => x.stage === gate.stage)?.plan : child.plan;
  return [
    '',
    `WAITING: the chain waits for the approval of ${child.runbook} ${id} on ${child.environment}/${child.target}` +
      `${gate.stage ? ` (stage "${gate.stage}")` : ''}, ${gate.approvedBy.length}/${gate.policy?.quorum ?? '?'} approvals;` +
      ` ${parent.runbook}'s approval does not cover it`,
    `  plan ${gate.planHash ?? ''}`,
    `  ${plan?.summary ?? ''}`,
    ...(plan?.changes ?? []).map((c) => `  - ${c.item}: ${c.from ?? '(unset)'} → ${c.to ?? '(unset)'}`),
    ...sampleLines(plan?.details),
    `  its plan in full: runbook status ${id}`,
    `  approve: runbook approve ${id} --by <name>`,
    `  reject:  runbook reject ${id} --by <name> --comment "<why>"   (stops the chain)`,
  ];
}

/** The rows a plan names (test-data-cleanup: a sample of keys and labels per table, the file with every id). */
function sampleLines(details: Record<string, unknown> | undefined): string[] {
  const sample = details?.sample;
  const lines: string[] = [];
  if (sample && typeof sample === 'object' && !Array.isArray(sample))
    for (const [table, rows] of Object.entries(sample)) {
      if (!Array.isArray(rows)) continue;
      const shown = rows.map((r: { key?: unknown; label?: unknown }) =>
        r.label === undefined ? String(r.key) : `${String(r.key)} "${String(r.label)}"`,
      );
      lines.push(`  sample ${table}: ${shown.join(', ')}`);
    }
  const digest = details?.idsDigest;
  if (typeof digest === 'string' && typeof details?.workDir === 'string')
    lines.push(`  every id: ${details.workDir}/ids-${digest}.json`);
  return lines;
}
