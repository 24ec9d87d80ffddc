import { formatDuration } from '../../shared/duration.js';
import { RUNBOOKS } from '../../shared/runbooks.js';
import { formatRto, isRtoReport, type RtoReport } from '../../workflows/sqlite/rto.js';
import { runSummary } from './communication.js';
import type { EvidenceFacts } from './document.js';
import { automatic, figures, obj, str } from './run-facts.js';

/**
 * The seed's post-mortem template (sqlite-rollback-and-disaster-recovery.md §7.2) filled from one run: its facts
 * (evidence, or status while it runs) and what the runbook put in `extra`. Works for any runbook; these names in
 * `extra` fill more of it when a runbook records them:
 *
 * - `severity`: "CRITICAL" | "HIGH" | …            → Summary
 * - `servicesAffected`: string[]                    → Impact (default: the environment/target)
 * - `dataLoss`: string                              → Impact
 * - `backup`: { file, createdAt } or a file name   → Resolution
 * - `forensicCopy`: { dir } or a directory          → Resolution
 * - every number (and yes/no) at any depth          → Impact ("measured by the run", see figures())
 * - `rto`: RtoReport (src/workflows/sqlite/rto.ts)  → Summary (start/end), Resolution
 *
 * What the run did and the state it left come from the communication's per-runbook hooks (communication-hooks.ts).
 * What only people know (users impacted, root cause, lessons, action items) stays a placeholder to fill in.
 */
export interface PostmortemSource extends EvidenceFacts {
  chainHead?: string;
  signature?: { keyId: string } | null;
}

const TODO = '_(to be filled in)_';

const span = (from: string | undefined, to: string | undefined): string =>
  from && to ? formatDuration(Math.max(0, Date.parse(to) - Date.parse(from))) : 'n/a';

interface Event {
  at: string;
  text: string;
}

function timeline(f: PostmortemSource, rto: RtoReport | undefined): Event[] {
  const events: Event[] = [];
  if (rto && rto.detectedAt < f.startedAt) events.push({ at: rto.detectedAt, text: 'incident detected' });
  events.push({ at: f.startedAt, text: `${f.runbook} started by ${f.requester}: ${f.reason}` });
  for (const s of f.steps) {
    const at = s.endedAt ?? s.startedAt;
    if (!at) continue;
    const detail = s.error ?? s.result;
    events.push({ at, text: `step "${s.name}" ${s.status}${detail ? `: ${detail}` : ''}` });
  }
  for (const a of f.approvals) {
    const auth = a.auth === 'signed' ? `signed, key ${a.keyId}` : 'unsigned';
    const note = a.comment ?? a.reason;
    events.push({
      at: a.at,
      text: `${a.kind}${a.stage ? ` (stage "${a.stage}")` : ''} by ${a.by} [${auth}]${a.accepted ? '' : ` ignored: ${a.ignoredBecause}`}${note ? ` — ${note}` : ''}`,
    });
  }
  for (const e of f.escalations)
    events.push({ at: e.at, text: `escalated to level ${e.level}${e.contact ? ` (${e.contact})` : ''}: ${e.reason}` });
  for (const c of f.compensations)
    events.push({
      at: c.endedAt,
      text: `undo of "${c.step}" ${c.status}${c.error ? `: ${c.error}` : ''}${c.reason ? `: ${c.reason}` : ''}`,
    });
  if (f.endedAt) events.push({ at: f.endedAt, text: `run ended: ${String(f.outcome).toUpperCase()}` });
  // stable: events at one instant keep the order above (a step before the undo it caused)
  return events.map((e, i) => ({ e, i })).sort((a, b) => a.e.at.localeCompare(b.e.at) || a.i - b.i).map(({ e }) => e);
}

/** The post-mortem of one run, in the seed's template (Markdown). */
export function renderPostmortem(f: PostmortemSource): string {
  const extra = f.extra ?? {};
  const rto = isRtoReport(extra.rto) ? extra.rto : undefined;
  const start = rto?.detectedAt ?? f.startedAt;
  // healthy again only when the RTO was reached (a run whose change was undone did not get there)
  const healthy = rto?.totalMs === undefined ? undefined : rto.phases.find((p) => p.phase === 'healthy')?.endedAt;
  const end = healthy ?? f.endedAt ?? undefined;
  const backup = obj(extra.backup);
  const backupFile = str(extra.backup);
  const forensic = str(obj(extra.forensicCopy)?.dir) ?? str(extra.forensicCopy);
  const measured = figures(extra);
  const summary = runSummary(f);
  const services = Array.isArray(extra.servicesAffected) ? extra.servicesAffected.map(String) : [];
  const approvals = f.approvals.filter((a) => a.kind === 'approve' && a.accepted);
  const byPolicy = automatic(f);
  const undone = f.compensations.filter((c) => c.status !== 'kept');
  const kept = f.compensations.filter((c) => c.status === 'kept');
  const succeeded = f.steps.filter((s) => s.status === 'succeeded' || s.status === 'compensated').map((s) => s.name);
  const definition = RUNBOOKS[f.runbook];

  const lines = [
    `# Incident Post-Mortem: ${start.slice(0, 10)}`,
    '',
    `_Filled from run \`${f.workflowId}\` (run \`${f.runId}\`) of \`${f.runbook}\` on ${f.environment}/${f.target}, ` +
      `outcome ${String(f.outcome ?? 'running').toUpperCase()}${f.chainHead ? `; evidence chain head \`${f.chainHead}\`${f.signature ? `, signed by worker key \`${f.signature.keyId}\`` : ', not signed'}` : '; not from signed evidence'}._`,
    '',
    '## Summary',
    `- Incident start time: ${start}${rto && start !== f.startedAt ? ` (detected; the run started ${f.startedAt})` : ''}`,
    `- Incident end time: ${end ?? 'ongoing'}${healthy ? ' (healthy again)' : f.endedAt ? ' (run ended)' : ''}`,
    `- Duration: ${span(start, end)}`,
    `- Severity: ${str(extra.severity) ?? 'n/a'}`,
    '',
    '## Impact',
    `- Services affected: ${services.length ? services.join(', ') : `${f.environment}/${f.target}`}`,
    `- Users impacted: ${TODO}`,
    `- Data loss: ${str(extra.dataLoss) ?? 'n/a'}`,
    ...(measured.length ? ['- Measured by the run:', ...measured.map((m) => `  - ${m}`)] : []),
    '',
    '## Root Cause',
    `- Primary cause: ${TODO}`,
    `- Contributing factors: ${TODO}`,
    `- Reason given for the run: ${f.reason}`,
    ...(f.error ? [`- Error reported by the run: ${f.error}`] : []),
    '',
    '## Timeline',
    ...timeline(f, rto).map((e) => `- [${e.at}] ${e.text}`),
    '',
    '## Resolution',
    `- Rollback procedure used: \`${f.runbook}\`${definition ? ` — ${definition.description}` : ''}`,
    `- Actions taken: ${succeeded.length ? succeeded.join(' → ') : 'none'}`,
    `- What the run did: ${summary.action}`,
    `- Backup used: ${backup ? `${str(backup.file) ?? '?'} (taken ${str(backup.createdAt) ?? '?'})` : (backupFile ?? 'n/a')}`,
    ...(forensic ? [`- Forensic copy: ${forensic}`] : []),
    `- Undone: ${undone.length ? undone.map((c) => `${c.step} (${c.status})`).join(', ') : 'nothing'}`,
    ...(kept.length ? [`- Left in place on purpose: ${kept.map((c) => `${c.step} (${c.reason})`).join(', ')}`] : []),
    ...(f.abort ? [`- Aborted by ${f.abort.by} at ${f.abort.at}: ${f.abort.reason}`] : []),
    `- Approvals: ${
      approvals.length
        ? approvals
            .map(
              (a) =>
                `${a.by} (${a.auth === 'signed' ? `signed, key ${a.keyId}` : 'unsigned'}${a.stage ? `, ${a.stage}` : ''})`,
            )
            .join(', ')
        : 'none'
    }${byPolicy.length ? `; ${byPolicy.join(', ')}` : ''}`,
    ...(summary.currentState.length
      ? ['- State after the run:', ...summary.currentState.map((l) => `  - ${l}`)]
      : []),
    `- Phase durations: ${f.phases.map((p) => `${p.phase} ${p.durationMs === undefined ? 'n/a' : formatDuration(p.durationMs)}`).join(', ')}`,
    `- ${rto ? formatRto(rto) : 'RTO: n/a'}`,
    '',
    '## Lessons Learned',
    `- What went well: ${TODO}`,
    `- What could be improved: ${TODO}`,
    '',
    '## Action Items',
    '- [ ] _(action)_ (Owner, Due Date)',
    '',
  ];
  return lines.join('\n');
}
