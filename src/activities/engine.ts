import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { canonicalJson } from '../shared/canonical-json.js';
import { parseDuration } from '../shared/duration.js';
import type { EvidenceInput, EvidenceRef, Plan } from '../shared/types.js';
import { sha256 } from './digest.js';
import { loadEnvironment, withEnvironmentErrors } from './environment.js';
import { buildEvidence, evidencePath, evidenceSigningText, planHashOf, stagePlanHashOf } from './evidence/document.js';
import { writeFileAtomically } from './files.js';
import { signText, verifyText, type KeyPair } from './keys.js';

export interface EngineDeps {
  environmentsDir: string;
  evidenceDir: string;
  log: Logger;
  /** the worker's Ed25519 key: it signs the chain head of every evidence file it writes */
  signingKey: KeyPair;
}

export const createEngineActivities = (deps: EngineDeps) => ({
  /** Runs started before run-bound plan hashes (engine v1) seal with this: sha256 of the plan alone. */
  async sealPlan(plan: Plan): Promise<{ planHash: string }> {
    return { planHash: sha256(canonicalJson(plan)) };
  },

  /** The plan hash approvers quote: it covers workflow id, run id and the plan (see planHashOf). */
  async sealRunPlan(input: { workflowId: string; runId: string; plan: Plan }): Promise<{ planHash: string }> {
    return { planHash: planHashOf(input.workflowId, input.runId, input.plan) };
  },

  /** A stage's plan hash (per-stage approvals): it covers workflow id, run id, the stage's name and its plan. */
  async sealStagePlan(input: {
    workflowId: string;
    runId: string;
    stage: string;
    plan: Plan;
  }): Promise<{ planHash: string }> {
    return { planHash: stagePlanHashOf(input.workflowId, input.runId, input.stage, input.plan) };
  },

  /** Whether a decision's signature verifies (the result is in history, so replay never re-verifies). */
  async verifyDecision(input: { publicKey: string; text: string; signature: string }): Promise<{ valid: boolean }> {
    return { valid: verifyText(input.publicKey, input.text, input.signature) };
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

  /**
   * Writes `<evidenceDir>/<runbook>/<YYYYMMDD>/<workflowId>.json` (0600, atomically) with the chain head signed by
   * this worker's key; same input, same bytes. Never overwrites another run's file (same id, same day).
   */
  async writeEvidence(input: EvidenceInput): Promise<EvidenceRef> {
    const doc = buildEvidence(input);
    const key = deps.signingKey;
    doc.signature = {
      keyId: key.keyId,
      publicKey: key.publicKey,
      signature: signText(key, evidenceSigningText(doc.workflowId, doc.runId, doc.chainHead)),
    };
    let path = evidencePath(deps.evidenceDir, doc.runbook, doc.startedAt, doc.workflowId);
    const existing = await readFile(path, 'utf8').then(
      (t) => JSON.parse(t) as { runId?: string },
      () => undefined,
    );
    if (existing && existing.runId !== doc.runId) path = path.replace(/\.json$/, `.${doc.runId}.json`);
    const bytes = `${JSON.stringify(doc, null, 2)}\n`;
    await writeFileAtomically(path, bytes);
    return {
      path,
      sha256: sha256(bytes),
      chainHead: doc.chainHead,
      keyId: key.keyId,
      signature: doc.signature.signature,
    };
  },
});
