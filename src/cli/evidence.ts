import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { statusQuery } from '../shared/messages.js';
import { formatDuration } from '../shared/duration.js';
import type { RunbookResult } from '../shared/types.js';
import { buildEvidence, type EvidenceDocument } from '../activities/engine.js';
import { chainGenesis, sha256, verifyChain } from '../activities/evidence-format.js';
import { finished } from './client.js';

const FILES = { history: 'history.json', evidence: 'evidence.json', report: 'report.md', manifest: 'SHA256SUMS' };

/** Writes history (as `temporal workflow show --output json`), evidence, report and manifest into `dir`. */
export async function exportEvidence(client: Client, id: string, dir: string): Promise<string> {
  const handle = client.workflow.getHandle(id);
  const description = await handle.describe();
  if (description.status.name === 'RUNNING') throw new Error(`${id} is still running: export evidence after it ends`);
  const history = await handle.fetchHistory();
  const { result } = await finished(handle);
  let evidenceBytes: string;
  if (result?.evidence) {
    evidenceBytes = await readFile(result.evidence.path, 'utf8').catch(() => '');
    if (!evidenceBytes || sha256(evidenceBytes) !== result.evidence.sha256) {
      throw new Error(
        `evidence file ${result.evidence.path} is missing here or does not match the digest in the workflow result`,
      );
    }
  } else {
    // cancelled runs end without a result: rebuild the evidence document from the final status
    const status = await handle.query(statusQuery);
    evidenceBytes = `${JSON.stringify(buildEvidence({ status }), null, 2)}\n`;
  }
  await mkdir(dir, { recursive: true });
  const files: Record<string, string> = {
    [FILES.history]: `${historyToJSON(history)}\n`,
    [FILES.evidence]: evidenceBytes,
    [FILES.report]: renderReport(JSON.parse(evidenceBytes) as EvidenceDocument),
  };
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  const manifest = Object.entries(files)
    .map(([name, text]) => `${sha256(text)}  ${name}`)
    .join('\n');
  await writeFile(join(dir, FILES.manifest), `${manifest}\n`);
  return dir;
}

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
        `| ${s.name} | ${s.status} | ${s.startedAt ?? ''} | ${s.endedAt ?? ''} | ${s.attempts} | ${(s.error ?? s.result ?? '').replaceAll('|', '\\|')} |`,
    ),
    '',
    '## Approvals',
    '',
    ...(e.approvals.length
      ? e.approvals.map(
          (a) =>
            `- ${a.at} ${a.kind} by **${a.by}**: ${a.accepted ? 'accepted' : `ignored (${a.ignoredBecause})`}${a.comment ? ` — ${a.comment}` : ''}`,
        )
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
      ? e.compensations.map((c) => `- undo **${c.step}**: ${c.status}${c.error ? ` — ${c.error}` : ''}`)
      : ['(none)']),
    '',
    '## Phase durations',
    '',
    ...e.phases.map((p) => `- ${p.phase}: ${p.durationMs === undefined ? 'n/a' : formatDuration(p.durationMs)}`),
    '',
  ];
  return lines.join('\n');
}

/** Recomputes the manifest digests, the hash chain, and checks the chain head against the history's result. */
export async function verifyEvidenceDir(dir: string): Promise<string[]> {
  const problems: string[] = [];
  const manifest = await readFile(join(dir, FILES.manifest), 'utf8').catch(() => undefined);
  if (manifest === undefined) return [`${FILES.manifest}: missing`];
  const listed = new Set<string>();
  for (const line of manifest.split('\n').filter(Boolean)) {
    const m = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
    if (!m) {
      problems.push(`${FILES.manifest}: malformed line "${line}"`);
      continue;
    }
    listed.add(m[2]!);
    const bytes = await readFile(join(dir, m[2]!)).catch(() => undefined);
    if (!bytes) problems.push(`${m[2]}: missing`);
    else if (sha256(bytes) !== m[1]) problems.push(`${m[2]}: sha256 differs from the manifest`);
  }
  for (const name of [FILES.history, FILES.evidence, FILES.report])
    if (!listed.has(name)) problems.push(`${name}: not in the manifest`);
  let evidence: EvidenceDocument;
  try {
    evidence = JSON.parse(await readFile(join(dir, FILES.evidence), 'utf8')) as EvidenceDocument;
  } catch (err) {
    return [...problems, `${FILES.evidence}: unreadable: ${(err as Error).message}`];
  }
  problems.push(
    ...verifyChain(chainGenesis(evidence.workflowId, evidence.runId), evidence.chain ?? [], evidence.chainHead),
  );
  const records = evidence.chain?.filter((l) => l.kind === 'step').map((l) => l.record);
  if (JSON.stringify(records) !== JSON.stringify(evidence.steps))
    problems.push(`${FILES.evidence}: steps differ from the chained step records`);
  const head = await chainHeadFromHistory(join(dir, FILES.history)).catch((err: Error) => {
    problems.push(`${FILES.history}: ${err.message}`);
    return undefined;
  });
  if (head !== undefined && head !== null && head !== evidence.chainHead)
    problems.push(`chain head in ${FILES.evidence} differs from the workflow result in the history`);
  return problems;
}

/** The chain head the workflow itself returned (completion result or failure details), or null for cancelled runs. */
async function chainHeadFromHistory(path: string): Promise<string | null> {
  const history = JSON.parse(await readFile(path, 'utf8')) as { events?: Array<Record<string, unknown>> };
  const last = history.events?.[history.events.length - 1] as Record<string, any> | undefined;
  if (!last) throw new Error('no events');
  const payload =
    last.workflowExecutionCompletedEventAttributes?.result?.payloads?.[0] ??
    last.workflowExecutionFailedEventAttributes?.failure?.applicationFailureInfo?.details?.payloads?.[0];
  if (!payload) return null;
  const result = JSON.parse(Buffer.from(payload.data as string, 'base64').toString('utf8')) as RunbookResult;
  return result.evidence?.chainHead ?? null;
}
