import type { Command } from 'commander';
import type { Client } from '@temporalio/client';
import { newNonce, personKeyPath, readPrivateKey, signText, KeyError } from '../../activities/keys.js';
import { currentGate } from '../../shared/approval-stages.js';
import { claimsOf, decisionSigningText, type Decision, type DecisionSignal } from '../../shared/decisions.js';
import { abortSignal, approveSignal, rejectSignal, statusQuery } from '../../shared/messages.js';
import { canonicalName } from '../../shared/names.js';
import type { RunbookStatus } from '../../shared/types.js';
import { CliError, queryStatus, withClient } from '../errors.js';

interface DecideOptions {
  by: string;
  comment?: string;
  reason?: string;
  plan?: string;
  key?: string;
  print?: boolean;
}

const SIGNALS = { approve: approveSignal, reject: rejectSignal, abort: abortSignal } as const;

/**
 * The decision signal for this run: signed with the person's key when they have one (their key file, or --key),
 * bound to the run id, the full plan hash, now and a fresh nonce; unsigned otherwise (where the environment
 * allows it).
 */
export async function buildDecision(
  decision: Decision,
  status: RunbookStatus,
  o: DecideOptions,
): Promise<DecisionSignal> {
  const by = o.by.trim();
  // per-stage approvals: approve and reject name the waiting stage's plan; an abort the run's
  const gate = currentGate(status, decision);
  let planHash = o.plan?.trim().toLowerCase() || gate.planHash;
  if (decision === 'approve' && !planHash) {
    throw new CliError(
      `${status.workflowId} has no plan yet (phase ${status.phase}); try again when it waits for approval`,
      1,
    );
  }
  const keyFile = o.key ?? personKeyPath(by);
  let key;
  try {
    key = await readPrivateKey(keyFile);
  } catch (err) {
    if (!(err instanceof KeyError) || o.key) throw new CliError(`--key ${keyFile}: ${(err as Error).message}`);
    if (gate.policy?.requireSignatures || status.approval.policy?.requireSignatures) {
      throw new CliError(
        `no key for ${by} at ${keyFile}, and ${status.environment} requires signed decisions: ` +
          `create one with "runbook keys init --name ${by}" and add its public key to the environment's approvers`,
      );
    }
    return { by, planHash, comment: o.comment, reason: o.reason };
  }
  // a signature names the whole plan hash: a prefix given with --plan must be of the current plan
  if (planHash && planHash.length < 64) {
    if (!gate.planHash?.startsWith(planHash)) {
      throw new CliError(`--plan ${planHash} is not the current plan (${gate.planHash?.slice(0, 12) ?? 'none'})`);
    }
    planHash = gate.planHash;
  }
  const unsigned: DecisionSignal = {
    by,
    planHash,
    comment: o.comment,
    reason: o.reason,
    workflowId: status.workflowId,
    runId: status.runId,
    issuedAt: new Date().toISOString(),
    nonce: newNonce(),
    keyId: key.keyId,
  };
  return { ...unsigned, signature: signText(key, decisionSigningText(claimsOf(decision, unsigned))) };
}

export function registerDecisionCommands(program: Command): void {
  const decide = (decision: Decision) => async (id: string, o: DecideOptions) =>
    withClient(async (client) => {
      const status = await queryStatus(client, id);
      const signal = await buildDecision(decision, status, o);
      const json = JSON.stringify(signal);
      if (o.print) {
        console.log(json);
        console.error(
          `paste it into the Web UI (Send a Signal, name "${decision}") or run:\n` +
            `  temporal workflow signal --workflow-id ${id} --name ${decision} --input '${json}'\n` +
            (signal.signature
              ? `(signed; valid for the environment's signatureTtl from ${signal.issuedAt}, once)`
              : '(unsigned)'),
        );
        return;
      }
      await client.workflow.getHandle(id).signal(SIGNALS[decision], signal);
      await report(client, id, decision, signal, status.approval.records.length);
    });

  program
    .command('approve <id>')
    .description('approve the current plan (signed with your key when you have one)')
    .requiredOption('--by <name>', 'approver')
    .option('--comment <text>', 'comment recorded with the approval')
    .option('--plan <hash>', 'plan hash you reviewed (default: the one status shows)')
    .option('--key <file>', 'private key to sign with (default: your key file for --by)')
    .option('--print', 'print the signal JSON (for the Web UI or the temporal CLI) instead of sending it')
    .action(decide('approve'));

  program
    .command('reject <id>')
    .description('reject the plan: nothing changes, the run ends as rejected')
    .requiredOption('--by <name>', 'approver or requester')
    .option('--comment <text>', 'why')
    .option('--key <file>', 'private key to sign with')
    .option('--print', 'print the signal JSON instead of sending it')
    .action(decide('reject'));

  program
    .command('abort <id>')
    .description('stop the run and undo what it changed (outcome aborted)')
    .requiredOption('--by <name>', 'who aborts')
    .requiredOption('--reason <text>', 'why')
    .option('--key <file>', 'private key to sign with')
    .option('--print', 'print the signal JSON instead of sending it')
    .action(decide('abort'));
}

/** After a signal: show whether the workflow accepted or ignored it (and why). */
async function report(
  client: Client,
  id: string,
  decision: Decision,
  sent: DecisionSignal,
  before: number,
): Promise<void> {
  const handle = client.workflow.getHandle(id);
  const mine = (s: RunbookStatus) =>
    s.approval.records
      .slice(before)
      .find(
        (r) =>
          r.kind === decision &&
          canonicalName(r.by) === canonicalName(sent.by) &&
          (!sent.nonce || r.nonce === sent.nonce),
      );
  for (let i = 0; i < 40; i++) {
    const status = await handle.query(statusQuery).catch(() => undefined);
    const record = status && mine(status);
    if (status && record) {
      if (!record.accepted) throw new CliError(`${decision} by ${sent.by} was ignored: ${record.ignoredBecause}`, 1);
      const how = record.auth === 'signed' ? `signed with key ${record.keyId}` : 'unsigned';
      const gate = currentGate(status);
      const stage = record.stage ? ` for stage "${record.stage}"` : '';
      const quorum =
        decision === 'approve' && !record.stage
          ? ` (${status.approval.approvedBy.length}/${status.approval.policy?.quorum ?? '?'} approvals)`
          : decision === 'approve' && gate.stage === record.stage
            ? ` (${gate.approvedBy.length}/${gate.policy?.quorum ?? '?'} approvals)`
            : '';
      console.log(`${decision}${stage} by ${sent.by} accepted, ${how}${quorum}`);
      if (decision === 'abort') console.log(`follow the compensation with: runbook watch ${id}`);
      return;
    }
    if (status && decision === 'abort' && status.abort && status.engine !== 'v2') {
      console.log(`abort sent to ${id}; follow the compensation with: runbook watch ${id}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  console.log(`${decision} sent to ${id}`);
}
