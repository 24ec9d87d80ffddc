import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { sha256 } from '../activities/digest.js';
import { loadEnvironment } from '../activities/environment.js';
import type { EvidenceDocument } from '../activities/evidence/document.js';
import { evidenceRefsIn, isClosed, type HistoryJson } from '../activities/evidence/history.js';
import { renderReport } from '../activities/evidence/report.js';
import { BUNDLE_FILES, checkBundle, firstDifferingEvent } from '../activities/evidence/verify.js';
import { writeFileAtomically } from '../activities/files.js';
import { PUBLIC_KEY_PATTERN } from '../shared/decisions.js';

/**
 * Writes history (as `temporal workflow show --output json`), the evidence file the run wrote (found through its
 * writeEvidence result in that history, digest checked), the report rendered from it, and the manifest.
 */
export async function exportEvidence(client: Client, id: string, dir: string): Promise<string> {
  const handle = client.workflow.getHandle(id);
  const historyJson = `${historyToJSON(await handle.fetchHistory())}\n`;
  const history = JSON.parse(historyJson) as HistoryJson;
  if (!isClosed(history)) throw new Error(`${id} is still running: export evidence after it ends`);
  const evidenceBytes = await readRunEvidence(id, history);
  const files: Record<string, string> = {
    [BUNDLE_FILES.history]: historyJson,
    [BUNDLE_FILES.evidence]: evidenceBytes,
    [BUNDLE_FILES.report]: renderReport(JSON.parse(evidenceBytes) as EvidenceDocument),
  };
  for (const [name, text] of Object.entries(files)) await writeFileAtomically(join(dir, name), text);
  const manifest = Object.entries(files)
    .map(([name, text]) => `${sha256(text)}  ${name}`)
    .join('\n');
  await writeFileAtomically(join(dir, BUNDLE_FILES.manifest), `${manifest}\n`);
  return dir;
}

/** The evidence file a closed run wrote (found through its history), checked against the digest it recorded. */
export async function readRunEvidence(id: string, history: HistoryJson): Promise<string> {
  const ref = evidenceRefsIn(history).at(-1);
  if (!ref) throw new Error(`${id} wrote no evidence (a terminated run writes none)`);
  const evidenceBytes = await readFile(ref.path, 'utf8').catch(() => '');
  if (!evidenceBytes || sha256(evidenceBytes) !== ref.sha256) {
    throw new Error(`evidence file ${ref.path} is missing here or does not match the digest the run recorded`);
  }
  return evidenceBytes;
}

export interface VerifyOptions {
  /** trusted worker keys: `ed25519:…` lines or files holding one */
  workerKeys: string[];
  /** also compare history.json with the server's history of the run */
  server?: { address: string; namespace: string };
  /** where the environment files are (their evidence.workerKeys are trusted too) */
  environmentsDir: string;
}

/**
 * Everything checkBundle() checks, plus the anchors outside the bundle: the worker signature against keys the
 * auditor holds (given, or in the run's environment file) and, with a server, the history Temporal itself keeps.
 * Evidence is verified only when no check fails and at least one anchor held.
 */
export async function verifyEvidence(
  dir: string,
  o: VerifyOptions,
): Promise<{ problems: string[]; anchors: string[] }> {
  const given = await Promise.all(o.workerKeys.map((k) => keyLine(k)));
  // the run's environment file may name trusted worker keys too (an unreadable bundle is checkBundle's to report)
  const environment = await readFile(join(dir, BUNDLE_FILES.evidence), 'utf8').then(
    (text) => (JSON.parse(text) as { environment?: unknown }).environment,
    () => undefined,
  );
  const fromEnvironment = typeof environment === 'string' ? await environmentKeys(o.environmentsDir, environment) : [];
  const { problems, anchors, evidence, history } = await checkBundle(dir, [...given, ...fromEnvironment]);
  if (o.server && evidence) {
    const connection = await Connection.connect({ address: o.server.address, connectTimeout: 5000 });
    try {
      const client = new Client({ connection, namespace: o.server.namespace });
      const live = JSON.parse(
        historyToJSON(await client.workflow.getHandle(evidence.workflowId, evidence.runId).fetchHistory()),
      ) as HistoryJson;
      const differs = history ? firstDifferingEvent(history, live) : 'history.json unreadable';
      if (differs) problems.push(`history.json differs from the history on ${o.server.address} (event ${differs})`);
      else anchors.push(`history.json is the history on ${o.server.address}`);
    } catch (err) {
      problems.push(`${o.server.address}: cannot fetch the run's history: ${(err as Error).message}`);
    } finally {
      await connection.close();
    }
  }
  if (anchors.length === 0) {
    problems.push(
      'not anchored: no trusted worker key vouches for the chain head and no server was asked ' +
        '(give --worker-key <file|ed25519:…>, list evidence.workerKeys in the environment file, or --server <address>)',
    );
  }
  return { problems, anchors };
}

/** A key given as the line itself or as a file holding it. */
async function keyLine(key: string): Promise<string> {
  if (PUBLIC_KEY_PATTERN.test(key.trim())) return key.trim();
  const text = await readFile(key, 'utf8').catch(() => {
    throw new Error(`worker key ${key}: neither an "ed25519:…" line nor a readable file`);
  });
  return text.trim();
}

async function environmentKeys(environmentsDir: string, environment: string): Promise<string[]> {
  const env = await loadEnvironment(environmentsDir, environment).catch(() => undefined);
  if (!env) return [];
  return Promise.all(env.config.evidence.workerKeys.map((k) => keyLine(env.resolvePath(k)).catch(() => k)));
}
