import type { Command } from 'commander';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { buildEvidence, type EvidenceDocument } from '../../activities/evidence/document.js';
import { communicationContext, renderCommunication } from '../../activities/evidence/communication.js';
import { isClosed, type HistoryJson } from '../../activities/evidence/history.js';
import { renderPostmortem } from '../../activities/evidence/postmortem.js';
import { renderReport } from '../../activities/evidence/report.js';
import { writeFileAtomically } from '../../activities/files.js';
import { CliError, queryStatus, withClient } from '../errors.js';
import { readRunEvidence } from '../evidence.js';

/**
 * A run's facts for a report: the evidence it wrote when it has ended (digest checked), else — still running, or
 * its evidence is on another host — its status (the query, or the result of a closed run) with what it published.
 */
async function reportSource(
  client: Client,
  id: string,
): Promise<{ doc: EvidenceDocument; signed: boolean; history: HistoryJson }> {
  const history = await client.workflow
    .getHandle(id)
    .fetchHistory()
    .then((h) => JSON.parse(historyToJSON(h)) as HistoryJson)
    .catch((err: unknown) => {
      if (err instanceof WorkflowNotFoundError) throw new CliError(`no workflow with id "${id}"`, 1);
      throw err;
    });
  if (isClosed(history)) {
    const text = await readRunEvidence(id, history).catch(() => undefined);
    if (text) return { doc: JSON.parse(text) as EvidenceDocument, signed: true, history };
  }
  const status = await queryStatus(client, id);
  return { doc: buildEvidence({ status, extra: status.results }), signed: false, history };
}

export function registerReportCommands(program: Command): void {
  program
    .command('report <id>')
    .description(
      "a run's report (Markdown) from its evidence; --communication / --postmortem: the seed's templates, filled",
    )
    .option('--communication', 'the communication template (action, impact, undone, current state, approvals)')
    .option('--postmortem', 'the post-mortem template (summary, impact, timeline, resolution) filled from the run')
    .option('--out <file>', 'write it to this file instead of stdout')
    .action(async (id: string, opts: { communication?: boolean; postmortem?: boolean; out?: string }) =>
      withClient(async (client) => {
        if (opts.communication && opts.postmortem) throw new CliError('give --communication or --postmortem, not both');
        const { doc, signed, history } = await reportSource(client, id);
        if (!signed)
          console.error(`note: ${id} has no evidence here (yet): this is from its status, not from signed evidence`);
        const [kind, text] = opts.postmortem
          ? ['post-mortem', renderPostmortem(signed ? doc : { ...doc, chainHead: undefined })]
          : opts.communication
            ? ['communication', `${renderCommunication(doc, communicationContext(history))}\n`]
            : ['report', renderReport(doc)];
        if (opts.out) {
          await writeFileAtomically(opts.out, text);
          console.log(`${kind} written to ${opts.out}`);
        } else process.stdout.write(text);
      }),
    );
}
