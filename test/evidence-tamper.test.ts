import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../src/activities/digest.js';
import { buildChain, chainGenesis } from '../src/activities/evidence/chain.js';
import {
  chainEntries,
  evidenceSigningText,
  FACT_FIELDS,
  planHashOf,
  type EvidenceDocument,
} from '../src/activities/evidence/document.js';
import { renderReport } from '../src/activities/evidence/report.js';
import { generateKeyPair, signText } from '../src/activities/keys.js';
import { exportEvidence, verifyEvidence } from '../src/cli/evidence.js';
import { ATTEMPT_MARKER } from '../src/shared/constants.js';
import { abortSignal, approveSignal } from '../src/shared/messages.js';
import type { RunbookResult } from '../src/shared/types.js';
import { Harness } from './support/harness.js';

const h = new Harness();
let bundle: string;
let original: EvidenceDocument;
/** temp dirs of the bundles, removed at the end */
const bundles: string[] = [];

/** An aborted run after the change: steps, decisions, an escalation, an undo, a lock, phases, extra, abort. */
beforeAll(async () => {
  await h.start();
  const t = await h.demoTarget({ quietWindow: '60s' });
  const handle = await h.startRun({ environment: t.envName });
  const { planHash } = await h.waitForApproval(handle);
  await handle.signal(approveSignal, { by: 'mallory', planHash: planHash! });
  await handle.signal(approveSignal, { by: 'alice', planHash: planHash!, comment: 'go' });
  await h.waitFor(handle, (s) => s.currentStep === 'verify no dual writes');
  await handle.signal(abortSignal, { by: 'carol', reason: 'wrong service' });
  expect(((await handle.result()) as RunbookResult).outcome).toBe('aborted');
  const parent = mkdtempSync(join(tmpdir(), 'tamper-'));
  bundles.push(parent);
  bundle = await exportEvidence(h.client, handle.workflowId, join(parent, 'bundle'));
  original = JSON.parse(readFileSync(join(bundle, 'evidence.json'), 'utf8'));
});
afterAll(async () => {
  await h.close();
  for (const dir of bundles) rmSync(dir, { recursive: true, force: true });
});

const anchors = () => ({
  workerKeys: [h.workerKey.publicKey],
  server: { address: h.address, namespace: 'default' },
  environmentsDir: h.environmentsDir,
});

/** A copy of the bundle with evidence.json (and what else `rewrite` touches) replaced, SHA256SUMS recomputed. */
function tampered(change: (files: Record<string, string>) => void): string {
  const parent = mkdtempSync(join(tmpdir(), 'tamper-'));
  bundles.push(parent);
  const dir = join(parent, 'bundle');
  cpSync(bundle, dir, { recursive: true });
  const files: Record<string, string> = {};
  for (const name of ['history.json', 'evidence.json', 'report.md'])
    files[name] = readFileSync(join(dir, name), 'utf8');
  change(files);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const sums = Object.entries(files).map(([name, text]) => `${sha256(text)}  ${name}`);
  writeFileSync(join(dir, 'SHA256SUMS'), `${sums.join('\n')}\n`);
  return dir;
}

const json = (doc: unknown) => `${JSON.stringify(doc, null, 2)}\n`;

/**
 * The attacker's best: change a fact, rebuild the chain over the changed facts, sign the new head with a key of
 * their own, re-render the report, and put the new head and signature into the history's results.
 */
function rewriteConsistently(files: Record<string, string>, doc: EvidenceDocument): void {
  const attacker = generateKeyPair();
  const chain = buildChain(chainGenesis(doc.workflowId, doc.runId), chainEntries(doc));
  doc.chain = chain;
  doc.chainHead = chain.at(-1)!.hash;
  doc.signature = {
    keyId: attacker.keyId,
    publicKey: attacker.publicKey,
    signature: signText(attacker, evidenceSigningText(doc.workflowId, doc.runId, doc.chainHead)),
  };
  files['evidence.json'] = json(doc);
  files['report.md'] = renderReport(doc);
  const history = JSON.parse(files['history.json']!);
  for (const event of history.events) {
    const payload =
      event.activityTaskCompletedEventAttributes?.result?.payloads?.[0] ??
      event.workflowExecutionCompletedEventAttributes?.result?.payloads?.[0];
    if (!payload) continue;
    const value = JSON.parse(Buffer.from(payload.data, 'base64').toString('utf8'));
    const ref = value?.[ATTEMPT_MARKER] ? value.value : value?.evidence;
    if (!ref?.chainHead) continue;
    Object.assign(ref, { chainHead: doc.chainHead, keyId: attacker.keyId, signature: doc.signature.signature });
    payload.data = Buffer.from(JSON.stringify(value)).toString('base64');
  }
  files['history.json'] = `${JSON.stringify(history, null, 2)}\n`;
}

/** One change per class of fact the evidence states. */
const MUTATIONS: Record<string, (d: EvidenceDocument) => void> = {
  plan: (d) => (d.plan!.summary = 'nothing to see here'),
  planHash: (d) => (d.planHash = 'f'.repeat(64)),
  approvals: (d) => (d.approvals.find((a) => a.accepted)!.by = 'bob'),
  escalations: (d) => (d.escalations[0]!.contact = 'nobody'),
  compensations: (d) => (d.compensations[0]!.status = 'failed'),
  abort: (d) => (d.abort!.by = 'alice'),
  outcome: (d) => (d.outcome = 'succeeded'),
  phases: (d) => (d.phases[0]!.durationMs! += 1000),
  steps: (d) => (d.steps.find((s) => s.name === 'set flags')!.status = 'succeeded'),
  extra: (d) => ((d.extra as { mode: string }).mode = 'disable-strict-mode'),
  requester: (d) => (d.requester = 'someone else'),
  locks: (d) => (d.locks[0]!.state = 'gave_up'),
  approvalPolicy: (d) => (d.approvalPolicy!.quorum = 0),
};

describe('evidence that detects any rewrite', () => {
  it('the exported bundle verifies against both anchors (the worker key and the server)', async () => {
    expect(
      original.abort && original.compensations.length && original.escalations.length && original.locks.length,
    ).toBeTruthy();
    const { problems, anchors: held } = await verifyEvidence(bundle, anchors());
    expect(problems).toEqual([]);
    expect(held).toEqual([
      `chain head signed by trusted worker key ${h.workerKey.keyId}`,
      `history.json is the history on ${h.address}`,
    ]);
  });

  it('covers every fact field with a mutation', () => {
    expect(Object.keys(MUTATIONS).every((f) => (FACT_FIELDS as readonly string[]).includes(f))).toBe(true);
    for (const field of [
      'plan',
      'planHash',
      'approvals',
      'escalations',
      'compensations',
      'abort',
      'outcome',
      'phases',
      'steps',
      'extra',
    ]) {
      expect(MUTATIONS).toHaveProperty(field);
    }
  });

  it.each(Object.keys(MUTATIONS))(
    'a changed %s in evidence.json alone (SHA256SUMS recomputed) is named',
    async (field) => {
      const dir = tampered((files) => {
        const doc = JSON.parse(files['evidence.json']!) as EvidenceDocument;
        MUTATIONS[field]!(doc);
        files['evidence.json'] = json(doc);
      });
      const { problems } = await verifyEvidence(dir, anchors());
      const expected =
        field === 'planHash'
          ? 'evidence.json: planHash is not the hash of plan'
          : `evidence.json: "${field}" differs from what the chain records`;
      expect(problems).toContain(expected);
      // the report shows every fact but the approval policy: it no longer matches evidence.json
      if (field !== 'approvalPolicy') {
        expect(problems).toContainEqual(
          expect.stringMatching(/^report\.md: differs from the report rendered from evidence\.json \(line \d+\)$/),
        );
      }
    },
  );

  it.each(Object.keys(MUTATIONS))(
    'a changed %s rewritten consistently everywhere (chain, head, report, history, re-signed) fails on both anchors',
    async (field) => {
      const dir = tampered((files) => {
        const doc = JSON.parse(files['evidence.json']!) as EvidenceDocument;
        MUTATIONS[field]!(doc);
        if (field === 'plan') doc.planHash = planHashOf(doc.workflowId, doc.runId, doc.plan!);
        rewriteConsistently(files, doc);
      });
      const { problems, anchors: held } = await verifyEvidence(dir, anchors());
      expect(held).toEqual([]);
      const attackerKey = (JSON.parse(readFileSync(join(dir, 'evidence.json'), 'utf8')) as EvidenceDocument).signature!
        .keyId;
      expect(problems).toContain(
        `evidence.json: signed by worker key ${attackerKey}, which is not among the trusted keys`,
      );
      expect(problems).toContainEqual(
        expect.stringMatching(new RegExp(`^history\\.json differs from the history on ${h.address} \\(event \\d+\\)$`)),
      );
      // everything inside the bundle agrees with itself: only the anchors can tell
      expect(problems.filter((p) => p.startsWith('evidence.json: "') || p.startsWith('report.md'))).toEqual([]);
      if (field === 'planHash') expect(problems).toContain('evidence.json: planHash is not the hash of plan');
    },
  );

  it('without any anchor a bundle is not verified, however consistent it is', async () => {
    const { problems } = await verifyEvidence(bundle, { workerKeys: [], environmentsDir: h.environmentsDir });
    expect(problems).toEqual([
      'not anchored: no trusted worker key vouches for the chain head and no server was asked (give --worker-key <file|ed25519:…>, list evidence.workerKeys in the environment file, or --server <address>)',
    ]);
  });

  it('a line of report.md, a missing chain head, a missing signature or another run are each named', async () => {
    const cases: Array<[(files: Record<string, string>) => void, string | RegExp]> = [
      [
        (f) => (f['report.md'] = f['report.md']!.replace('ABORTED', 'SUCCEEDED')),
        /^report\.md: differs from the report rendered from evidence\.json \(line 1\)$/,
      ],
      [
        (f) => (f['evidence.json'] = json({ ...JSON.parse(f['evidence.json']!), chainHead: undefined })),
        'evidence.json: chainHead: missing',
      ],
      [
        (f) => (f['evidence.json'] = json({ ...JSON.parse(f['evidence.json']!), signature: null })),
        'evidence.json: no worker signature of the chain head',
      ],
      [
        (f) => (f['evidence.json'] = json({ ...JSON.parse(f['evidence.json']!), chain: [] })),
        'evidence.json: chain: missing or empty',
      ],
      [
        (f) =>
          (f['history.json'] = f['history.json']!.replaceAll(original.runId, '00000000-0000-0000-0000-000000000000')),
        `history.json: the history is of run 00000000-0000-0000-0000-000000000000, not ${original.runId}`,
      ],
    ];
    for (const [change, expected] of cases) {
      const { problems } = await verifyEvidence(tampered(change), anchors());
      if (typeof expected === 'string') expect(problems).toContain(expected);
      else expect(problems).toContainEqual(expect.stringMatching(expected));
    }
  });
});
