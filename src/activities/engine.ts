import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { loadEnvironment, withEnvironmentErrors } from './environment.js';
import { buildChain, canonicalJson, chainGenesis, sha256 } from './evidence-format.js';
import { parseDuration } from '../shared/duration.js';
import type { EvidenceInput, EvidenceRef, Plan } from '../shared/types.js';

export interface EngineDeps {
  environmentsDir: string;
  evidenceDir: string;
  log: Logger;
}

export const EVIDENCE_FORMAT = 'durable-runbooks/evidence@1';

export function evidencePath(evidenceDir: string, runbook: string, startedAt: string, workflowId: string): string {
  const day = startedAt.slice(0, 10).replaceAll('-', '');
  return join(evidenceDir, runbook, day, `${workflowId.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);
}

/** Builds the evidence document: the run's records plus a hash chain over them. */
export function buildEvidence({ status, extra }: EvidenceInput) {
  const entries = [
    ...status.steps.map((record) => ({ kind: 'step' as const, record })),
    ...status.approval.records.map((record) => ({ kind: 'approval' as const, record })),
    ...status.escalation.history.map((record) => ({ kind: 'escalation' as const, record })),
    ...status.compensations.map((record) => ({ kind: 'compensation' as const, record })),
    {
      kind: 'outcome' as const,
      record: {
        outcome: status.outcome,
        planHash: status.planHash ?? null,
        error: status.error ?? null,
        endedAt: status.endedAt,
      },
    },
  ];
  const chain = buildChain(chainGenesis(status.workflowId, status.runId), entries);
  const chainHead = chain[chain.length - 1]!.hash;
  return {
    format: EVIDENCE_FORMAT,
    runbook: status.runbook,
    workflowId: status.workflowId,
    runId: status.runId,
    environment: status.environment,
    target: status.target,
    requester: status.requester,
    reason: status.reason,
    dryRun: status.dryRun,
    outcome: status.outcome,
    error: status.error,
    startedAt: status.startedAt,
    endedAt: status.endedAt,
    plan: status.plan,
    planHash: status.planHash,
    approvalPolicy: status.approval.policy,
    approvals: status.approval.records,
    escalations: status.escalation.history,
    compensations: status.compensations,
    phases: status.phases,
    steps: status.steps,
    abort: status.abort,
    extra,
    chain,
    chainHead,
  };
}
export type EvidenceDocument = ReturnType<typeof buildEvidence>;

export const createEngineActivities = (deps: EngineDeps) => ({
  /** The plan hash approvers must quote: sha256 of the canonical JSON of the plan. */
  async sealPlan(plan: Plan): Promise<{ planHash: string }> {
    return { planHash: sha256(canonicalJson(plan)) };
  },

  /** Sends to the named channels of the environment (all when none named); any failed delivery throws. */
  async notify(input: {
    environment: string;
    subject: string;
    text: string;
    channels: string[];
  }): Promise<{ delivered: string[] }> {
    const env = await withEnvironmentErrors(() => loadEnvironment(deps.environmentsDir, input.environment));
    const names = input.channels.length ? input.channels : Object.keys(env.config.notifications);
    const delivered: string[] = [];
    for (const name of names) {
      const channel = env.config.notifications[name];
      if (!channel) throw new Error(`${env.file}: notifications.${name}: no such channel`);
      if (channel.type === 'log') {
        deps.log.info({ channel: name, subject: input.subject }, input.text);
      } else {
        const url = process.env[channel.urlEnv];
        if (!url)
          throw new Error(
            `notification channel ${name}: the worker's environment variable ${channel.urlEnv} is not set`,
          );
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ text: `*${input.subject}*\n${input.text}` }),
          signal: AbortSignal.timeout(parseDuration(channel.timeout)),
        });
        if (!response.ok) throw new Error(`notification channel ${name}: webhook answered HTTP ${response.status}`);
      }
      delivered.push(name);
    }
    return { delivered };
  },

  /** Writes `<evidenceDir>/<runbook>/<YYYYMMDD>/<workflowId>.json` atomically; same input, same bytes. */
  async writeEvidence(input: EvidenceInput): Promise<EvidenceRef> {
    const doc = buildEvidence(input);
    let path = evidencePath(deps.evidenceDir, input.status.runbook, input.status.startedAt, input.status.workflowId);
    const existing = await readFile(path, 'utf8').then(
      (t) => JSON.parse(t) as { runId?: string },
      () => undefined,
    );
    // never overwrite another run's evidence (same workflow id, same day)
    if (existing && existing.runId !== input.status.runId)
      path = path.replace(/\.json$/, `.${input.status.runId}.json`);
    const bytes = `${JSON.stringify(doc, null, 2)}\n`;
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, path);
    return { path, sha256: sha256(bytes), chainHead: doc.chainHead };
  },
});
