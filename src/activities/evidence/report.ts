import { stringify } from 'yaml';
import { formatDuration } from '../../shared/duration.js';
import type { ApprovalRecord, ApprovalStage } from '../../shared/types.js';
import { formatRto, isRtoReport } from '../../workflows/sqlite/rto.js';
import type { EvidenceDocument } from './document.js';

const cell = (text: string): string => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

function decision(a: ApprovalRecord): string {
  const auth = a.auth === 'signed' ? `signed, key ${a.keyId}` : 'unsigned';
  const verdict = a.accepted ? 'accepted' : `ignored (${a.ignoredBecause})`;
  const note = a.comment ?? a.reason;
  const stage = a.stage ? ` (stage "${a.stage}")` : '';
  return `- ${a.at} ${a.kind}${stage} by **${a.by}** [${auth}]: ${verdict}${note ? ` — ${note}` : ''}`;
}

/** Per-stage approvals (only runs that have them: older reports render exactly as they did). */
function stagesSection(stages: ApprovalStage[] | null | undefined): string[] {
  if (!stages?.length) return [];
  return [
    '## Approval stages',
    '',
    '| stage | policy | status | approved by | plan hash | plan |',
    '|---|---|---|---|---|---|',
    ...stages.map((s) => {
      const policy =
        s.policy === 'automatic'
          ? 'automatic'
          : `${s.policy.quorum} of ${s.policy.approvers.join(', ') || 'anyone'}${s.policy.requireSignatures ? ', signed' : ''}`;
      return `| ${s.stage} | ${cell(policy)} | ${s.status} | ${cell(s.approvedBy.join(', '))} | \`${s.planHash.slice(0, 12)}\` | ${cell(s.plan.summary)} |`;
    }),
    '',
  ];
}

/**
 * The human report of an evidence document. A pure function of the document: `verify-evidence` renders it again
 * and requires report.md to match byte for byte, so the report cannot say what the evidence does not.
 */
export function renderReport(e: EvidenceDocument): string {
  const lines = [
    `# ${e.runbook}: ${String(e.outcome).toUpperCase()}`,
    '',
    `- Workflow: \`${e.workflowId}\` (run \`${e.runId}\`)`,
    `- Environment / target: ${e.environment} / ${e.target}`,
    `- Requested by: ${e.requester} — ${e.reason}`,
    `- Started: ${e.startedAt}; ended: ${e.endedAt}`,
    `- Plan hash: \`${e.planHash ?? 'none'}\``,
    `- Chain head: \`${e.chainHead}\``,
    `- Signed by worker key: ${e.signature ? `\`${e.signature.keyId}\`` : '(not signed)'}`,
    ...(e.error ? [`- Error: ${e.error}`] : []),
    '',
    '## Plan',
    '',
    e.plan ? e.plan.summary : '(no plan)',
    ...(e.plan?.changes ?? []).map((c) => `- \`${c.item}\`: ${c.from ?? '(unset)'} → ${c.to ?? '(unset)'}`),
    '',
    '## Timeline',
    '',
    '| step | status | started | ended | attempts | result |',
    '|---|---|---|---|---|---|',
    ...e.steps.map(
      (s) =>
        `| ${s.name} | ${s.status} | ${s.startedAt ?? ''} | ${s.endedAt ?? ''} | ${s.attempts} | ${cell(s.error ?? s.result ?? '')} |`,
    ),
    '',
    '## Approvals',
    '',
    ...(e.approvals.length ? e.approvals.map(decision) : ['(none)']),
    ...(e.approvalsDropped ? [`- ${e.approvalsDropped} more ignored decisions were counted, not kept`] : []),
    '',
    ...stagesSection(e.stages),
    '## Target locks',
    '',
    ...(e.locks.length
      ? e.locks.map((l) => `- ${l.environment}/${l.target}: ${l.state}${l.grantedAt ? ` (granted ${l.grantedAt})` : ''}`)
      : ['(none)']),
    '',
    '## Escalations',
    '',
    ...(e.escalations.length
      ? e.escalations.map((x) => `- L${x.level} at ${x.at}: ${x.reason}${x.contact ? ` → ${x.contact}` : ''}`)
      : ['(none)']),
    '',
    '## Compensations',
    '',
    ...(e.compensations.length
      ? e.compensations.map(
          (c) => `- undo **${c.step}**: ${c.status}${c.error ? ` — ${c.error}` : ''}${c.reason ? ` — ${c.reason}` : ''}`,
        )
      : ['(none)']),
    ...(e.abort ? ['', `Aborted by ${e.abort.by} at ${e.abort.at}: ${e.abort.reason}`] : []),
    '',
    '## Phase durations',
    '',
    ...e.phases.map((p) => `- ${p.phase}: ${p.durationMs === undefined ? 'n/a' : formatDuration(p.durationMs)}`),
    '',
    ...resultsSection(e.extra),
  ];
  return lines.join('\n');
}

/** What the runbook added to its evidence (`extra`), whatever it is: the RTO as one line, then all of it as YAML. */
function resultsSection(extra: Record<string, unknown> | null): string[] {
  if (!extra || Object.keys(extra).length === 0) return [];
  return [
    '## Results',
    '',
    ...(isRtoReport(extra.rto) ? [`- ${formatRto(extra.rto)}`, ''] : []),
    '```yaml',
    stringify(extra).trimEnd(),
    '```',
    '',
  ];
}

/** A run's published results (`status.results`) as lines for the terminal: the RTO as one line, others compact. */
export function resultLines(results: Record<string, unknown> | undefined): string[] {
  return Object.entries(results ?? {}).map(([key, value]) => {
    if (isRtoReport(value)) return `${key}: ${formatRto(value)}`;
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    return `${key}: ${text.length > 300 ? `${text.slice(0, 300)}…` : text}`;
  });
}
