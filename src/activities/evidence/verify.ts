import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalJson } from '../../shared/canonical-json.js';
import { RUNBOOKS } from '../../shared/runbooks.js';
import { sha256 } from '../digest.js';
import { keyIdOf, verifyText } from '../keys.js';
import { chainGenesis, verifyChain } from './chain.js';
import {
  EVIDENCE_FORMAT,
  evidenceSigningText,
  factsDifferingFromChain,
  planHashOf,
  stagePlanHashOf,
  type EvidenceDocument,
} from './document.js';
import { evidenceRefsIn, resultIn, startedEvent, type HistoryJson } from './history.js';
import { renderReport } from './report.js';

/** The files of an exported evidence bundle (`runbook evidence`). */
export const BUNDLE_FILES = {
  history: 'history.json',
  evidence: 'evidence.json',
  report: 'report.md',
  manifest: 'SHA256SUMS',
} as const;

export interface BundleCheck {
  /** every mismatch found, each naming the file and the fact */
  problems: string[];
  /** what vouches for the bundle from outside it (a trusted worker key); empty = not anchored */
  anchors: string[];
  evidence?: EvidenceDocument;
  history?: HistoryJson;
}

const readText = (path: string) => readFile(path, 'utf8').catch(() => undefined);

/**
 * Checks a bundle on its own: the manifest, the hash chain, that every fact of evidence.json is the one the chain
 * states, that planHash is the hash of the plan, that report.md is exactly the report of evidence.json, that the
 * history is this run's and its evidence results name this chain head, and the worker's signature of the chain
 * head — trusted only when its key is one of `trustedKeys` (keys an auditor holds, never the bundle's own).
 */
export async function checkBundle(dir: string, trustedKeys: string[]): Promise<BundleCheck> {
  const problems: string[] = [];
  const anchors: string[] = [];
  const files: Record<string, string | undefined> = {};
  for (const name of Object.values(BUNDLE_FILES)) files[name] = await readText(join(dir, name));

  const manifest = files[BUNDLE_FILES.manifest];
  if (manifest === undefined) problems.push(`${BUNDLE_FILES.manifest}: missing`);
  else {
    const listed = new Map<string, string>();
    for (const line of manifest.split('\n').filter(Boolean)) {
      const m = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
      if (m) listed.set(m[2]!, m[1]!);
      else problems.push(`${BUNDLE_FILES.manifest}: malformed line "${line}"`);
    }
    for (const name of [BUNDLE_FILES.history, BUNDLE_FILES.evidence, BUNDLE_FILES.report]) {
      const digest = listed.get(name);
      if (digest === undefined) problems.push(`${name}: not in the manifest`);
      else if (files[name] === undefined) problems.push(`${name}: missing`);
      else if (sha256(files[name]!) !== digest) problems.push(`${name}: sha256 differs from the manifest`);
    }
  }

  let evidence: EvidenceDocument;
  try {
    evidence = JSON.parse(files[BUNDLE_FILES.evidence] ?? '') as EvidenceDocument;
  } catch (err) {
    return { problems: [...problems, `${BUNDLE_FILES.evidence}: unreadable: ${(err as Error).message}`], anchors };
  }
  if (evidence.format !== EVIDENCE_FORMAT) {
    problems.push(`${BUNDLE_FILES.evidence}: format ${JSON.stringify(evidence.format)}, this verifier reads ${EVIDENCE_FORMAT}`);
    return { problems, anchors, evidence };
  }

  const chainProblems = verifyChain(chainGenesis(evidence.workflowId, evidence.runId), evidence.chain, evidence.chainHead);
  problems.push(...chainProblems.map((p) => `${BUNDLE_FILES.evidence}: ${p}`));
  try {
    for (const field of factsDifferingFromChain(evidence as unknown as Record<string, unknown>, evidence.chain)) {
      problems.push(`${BUNDLE_FILES.evidence}: "${field}" differs from what the chain records`);
    }
  } catch (err) {
    problems.push(`${BUNDLE_FILES.evidence}: ${(err as Error).message}`);
  }
  if (evidence.plan) {
    const expected = planHashOf(evidence.workflowId, evidence.runId, evidence.plan, evidence.engine);
    if (evidence.planHash !== expected) problems.push(`${BUNDLE_FILES.evidence}: planHash is not the hash of plan`);
  } else if (evidence.planHash) problems.push(`${BUNDLE_FILES.evidence}: planHash without a plan`);
  for (const stage of evidence.stages ?? []) {
    if (stage.planHash !== stagePlanHashOf(evidence.workflowId, evidence.runId, stage.stage, stage.plan)) {
      problems.push(`${BUNDLE_FILES.evidence}: the plan hash of stage "${stage.stage}" is not the hash of its plan`);
    }
  }

  if (files[BUNDLE_FILES.report] !== undefined && files[BUNDLE_FILES.report] !== renderReport(evidence)) {
    problems.push(`${BUNDLE_FILES.report}: ${firstDifference(files[BUNDLE_FILES.report]!, renderReport(evidence))}`);
  }

  let history: HistoryJson | undefined;
  try {
    history = JSON.parse(files[BUNDLE_FILES.history] ?? '') as HistoryJson;
    problems.push(...historyProblems(history, evidence));
  } catch (err) {
    problems.push(`${BUNDLE_FILES.history}: unreadable: ${(err as Error).message}`);
  }

  const sig = evidence.signature;
  if (!sig) problems.push(`${BUNDLE_FILES.evidence}: no worker signature of the chain head`);
  else {
    const text = evidenceSigningText(evidence.workflowId, evidence.runId, evidence.chainHead);
    if (keyIdOf(sig.publicKey) !== sig.keyId) problems.push(`${BUNDLE_FILES.evidence}: signature keyId does not match its key`);
    if (!verifyText(sig.publicKey, text, sig.signature)) {
      problems.push(`${BUNDLE_FILES.evidence}: the worker signature does not verify for this chain head`);
    } else if (trustedKeys.map((k) => k.trim()).includes(sig.publicKey)) {
      anchors.push(`chain head signed by trusted worker key ${sig.keyId}`);
    } else if (trustedKeys.length) {
      problems.push(`${BUNDLE_FILES.evidence}: signed by worker key ${sig.keyId}, which is not among the trusted keys`);
    }
  }
  return { problems, anchors, evidence, history };
}

/** The history must be this run's, and what its writeEvidence activity and its result say must be this evidence. */
function historyProblems(history: HistoryJson, evidence: EvidenceDocument): string[] {
  const problems: string[] = [];
  const name = BUNDLE_FILES.history;
  const started = startedEvent(history);
  const workflowType = RUNBOOKS[evidence.runbook]?.workflowType;
  if (started.runId !== evidence.runId) problems.push(`${name}: the history is of run ${started.runId}, not ${evidence.runId}`);
  if (workflowType && started.workflowType !== workflowType) {
    problems.push(`${name}: the history is of a ${started.workflowType}, not a ${workflowType}`);
  }
  const written = evidenceRefsIn(history).at(-1);
  if (!written) problems.push(`${name}: the run wrote no evidence`);
  else {
    if (written.chainHead !== evidence.chainHead) problems.push(`${name}: the evidence the run wrote has another chain head`);
    if (evidence.signature && written.signature !== evidence.signature.signature) {
      problems.push(`${name}: the evidence the run wrote has another worker signature`);
    }
  }
  const result = resultIn(history);
  if (result?.evidence && result.evidence.chainHead !== evidence.chainHead) {
    problems.push(`${name}: the workflow result names another chain head`);
  }
  return problems;
}

function firstDifference(actual: string, expected: string): string {
  const a = actual.split('\n');
  const e = expected.split('\n');
  const i = a.findIndex((line, n) => line !== e[n]);
  const line = i === -1 ? Math.min(a.length, e.length) + 1 : i + 1;
  return `differs from the report rendered from evidence.json (line ${line})`;
}

/** The first event where two histories differ, or undefined when they are the same document. */
export function firstDifferingEvent(ours: HistoryJson, theirs: HistoryJson): string | undefined {
  const a = ours.events ?? [];
  const b = theirs.events ?? [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (canonicalJson(a[i] ?? null) !== canonicalJson(b[i] ?? null)) return String(a[i]?.eventId ?? b[i]?.eventId ?? i + 1);
  }
  return undefined;
}
