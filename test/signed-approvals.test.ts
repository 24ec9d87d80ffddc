import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, personKeyPath, signText, writePrivateKey, type KeyPair } from '../src/activities/keys.js';
import { buildDecision } from '../src/cli/commands/decide.js';
import { EXIT_USAGE } from '../src/shared/constants.js';
import { claimsOf, decisionSigningText, type DecisionSignal } from '../src/shared/decisions.js';
import { abortSignal, approveSignal, rejectSignal } from '../src/shared/messages.js';
import type { RunbookResult, RunbookStatus } from '../src/shared/types.js';
import { runbook, temporal } from './support/cli.js';
import { Harness } from './support/harness.js';
import { saveHistory } from './support/histories.js';

const h = new Harness();
beforeAll(() => h.start());
afterAll(() => h.close());

const keyFile = (name: string) => personKeyPath(name, { RUNBOOK_CONFIG_DIR: h.configDir });
const decisions = (s: RunbookStatus) =>
  Object.fromEntries(
    s.approval.records.map((r) => [r.comment ?? r.reason ?? r.kind, r.accepted ? 'accepted' : r.ignoredBecause]),
  );

/** A decision signed with `key` whatever it claims (what `runbook approve` would never send). */
function signedBy(key: KeyPair, status: RunbookStatus, claims: Partial<DecisionSignal>): DecisionSignal {
  const unsigned: DecisionSignal = {
    by: 'alice',
    planHash: status.planHash,
    workflowId: status.workflowId,
    runId: status.runId,
    issuedAt: new Date().toISOString(),
    nonce: `nonce-${Math.random()}`,
    keyId: key.keyId,
    ...claims,
  };
  return { ...unsigned, signature: signText(key, decisionSigningText(claimsOf('approve', unsigned))) };
}

describe('signed approvals (environments/demo-signed.yaml policy)', () => {
  it('ignores forged, replayed, expired, wrong-run, wrong-key and unsigned approvals, naming why; two keys make a quorum of 2; the pasted JSON works', async () => {
    const alice = await h.personKey('alice');
    const bob = await h.personKey('bob');
    const t = await h.signedDemoTarget({ alice, bob }, { quorum: 2 });
    const handle = await h.startRun({ environment: t.envName, requester: 'rita' });
    const status = await h.waitForApproval(handle);
    expect(status.approval.policy).toMatchObject({ requireSignatures: true, quorum: 2, signatureTtl: '15m' });

    const good = await buildDecision('approve', status, { by: 'alice', key: keyFile('alice'), comment: 'lgtm' });
    const otherRun = await buildDecision(
      'approve',
      { ...status, runId: 'another-run-of-the-same-workflow' },
      { by: 'alice', key: keyFile('alice'), comment: 'wrong run' },
    );
    const malloryFile = join(h.root, 'mallory.key');
    await writePrivateKey(malloryFile, generateKeyPair());
    const sent: DecisionSignal[] = [
      { by: 'alice', planHash: status.planHash!, comment: 'unsigned' },
      {
        ...(await buildDecision('approve', status, { by: 'alice', key: keyFile('alice'), comment: 'forged' })),
        comment: 'forged!',
      },
      signedBy(alice, status, { comment: 'expired', issuedAt: new Date(Date.now() - 16 * 60_000).toISOString() }),
      otherRun,
      await buildDecision('approve', status, { by: 'alice', key: keyFile('bob'), comment: 'wrong key' }),
      await buildDecision('approve', status, { by: 'alice', key: malloryFile, comment: 'unknown key' }),
      signedBy(alice, status, { comment: 'other plan', planHash: 'f'.repeat(64) }),
      good,
    ];
    for (const signal of sent) await handle.signal(approveSignal, signal);
    await handle.signal(approveSignal, { ...good, comment: 'lgtm' }); // the same message again
    const after = await h.waitFor(handle, (s) => s.approval.records.length === sent.length + 1);
    const ids = { alice: alice.keyId, bob: bob.keyId };
    expect(decisions(after)).toEqual({
      unsigned: 'unsigned: this environment requires signed decisions (runbook approve signs with your key)',
      'forged!': `the signature does not verify with alice's key ${ids.alice}`,
      expired: expect.stringMatching(/^expired: issued at .*, older than signatureTtl 15m$/),
      'wrong run': `signed for run another-run-of-the-same-workflow, this is run ${status.runId}`,
      'wrong key': `key ${ids.bob} is bob's, not alice's`,
      'unknown key': expect.stringMatching(/^unknown key [0-9a-f]{16}$/),
      'other plan': `stale plan hash ffffffffffff (current ${status.planHash!.slice(0, 12)})`,
      lgtm: expect.any(String),
    });
    const lgtm = after.approval.records.filter((r) => r.comment === 'lgtm');
    expect(lgtm.map((r) => r.ignoredBecause ?? 'accepted').sort()).toEqual([
      'accepted',
      'nonce already used (a replayed decision)',
    ]);
    expect(after.approval.approvedBy).toEqual(['alice']);
    expect(after.approval.waiting).toBe(true);
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);

    // alice again, a fresh signature: still one person
    await handle.signal(
      approveSignal,
      await buildDecision('approve', status, { by: 'ALICE', key: keyFile('alice'), comment: 'again' }),
    );
    expect(decisions(await h.waitFor(handle, (s) => s.approval.records.length === sent.length + 2)).again).toBe(
      'duplicate approval',
    );

    // bob signs with `runbook approve --print`, and the JSON is pasted as the Web UI's "Send a Signal" would send it
    const printed = await runbook(
      ['approve', handle.workflowId, '--by', 'bob', '--comment', 'ok from bob', '--print'],
      h.env(),
    );
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stderr).toContain(
      `temporal workflow signal --workflow-id ${handle.workflowId} --name approve --input`,
    );
    const pasted = JSON.parse(printed.stdout) as DecisionSignal;
    expect(pasted).toMatchObject({ by: 'bob', planHash: status.planHash, runId: status.runId, keyId: ids.bob });
    const signalled = await temporal(
      ['workflow', 'signal', '--workflow-id', handle.workflowId, '--name', 'approve', '--input', printed.stdout.trim()],
      h.address,
    );
    expect(signalled.code, signalled.stderr).toBe(0);
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect(result.approval.approvedBy).toEqual(['alice', 'bob']);
    const accepted = result.approval.records.filter((r) => r.accepted);
    expect(accepted.map((r) => [r.by, r.auth, r.keyId])).toEqual([
      ['alice', 'signed', ids.alice],
      ['bob', 'signed', ids.bob],
    ]);
    // key id and signature are in the evidence chain, and the report says who signed
    const evidence = JSON.parse(readFileSync(result.evidence!.path, 'utf8'));
    const chained = evidence.chain
      .filter((l: { kind: string }) => l.kind === 'approval')
      .map((l: { record: unknown }) => l.record);
    expect(chained.filter((r: { accepted: boolean }) => r.accepted)).toMatchObject([
      { by: 'alice', keyId: ids.alice, signature: good.signature },
      { by: 'bob', keyId: ids.bob, signature: pasted.signature },
    ]);
    expect(statSync(result.evidence!.path).mode & 0o777).toBe(0o600);
    await saveHistory(h.client, handle.workflowId, 'signed-quorum-and-ignored-decisions');
    expect(statSync(join(result.evidence!.path, '..')).mode & 0o777).toBe(0o700);
  });

  it('reject and abort count only from the approvers or the requester, and only signed here', async () => {
    const alice = await h.personKey('alice');
    const bob = await h.personKey('bob');
    const t = await h.signedDemoTarget({ alice, bob });
    const handle = await h.startRun({ environment: t.envName, requester: 'rita' });
    const status = await h.waitForApproval(handle);
    await handle.signal(rejectSignal, { by: 'alice', comment: 'unsigned reject' });
    await handle.signal(rejectSignal, { by: 'mallory', comment: 'not an approver' });
    await handle.signal(abortSignal, { by: 'bob', reason: 'unsigned abort' });
    await handle.signal(abortSignal, { by: 'mallory', reason: 'outsider abort' });
    const ignored = await h.waitFor(handle, (s) => s.approval.records.length === 4);
    expect(decisions(ignored)).toEqual({
      'unsigned reject': 'unsigned: this environment requires signed decisions (runbook reject signs with your key)',
      'not an approver': 'mallory may not reject: only the approvers or the requester',
      'unsigned abort': 'unsigned: this environment requires signed decisions (runbook abort signs with your key)',
      'outsider abort': 'mallory may not abort: only the approvers or the requester',
    });
    expect(ignored.outcome).toBeUndefined();

    // someone without a key cannot sign: the CLI says how to get one and sends nothing
    const keyless = await runbook(['approve', handle.workflowId, '--by', 'carol'], h.env());
    expect(keyless.code).toBe(EXIT_USAGE);
    expect(keyless.stderr).toContain('no key for carol at');
    expect(keyless.stderr).toContain('runbook keys init --name carol');

    const aborted = await runbook(['abort', handle.workflowId, '--by', 'bob', '--reason', 'wrong service'], h.env());
    expect(aborted.code, aborted.stderr).toBe(0);
    expect(aborted.stdout).toContain(`abort by bob accepted, signed with key ${bob.keyId}`);
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('aborted');
    expect(result.abort).toMatchObject({ by: 'bob', reason: 'wrong service', auth: 'signed', keyId: bob.keyId });
    expect(status.planHash).toBe(result.planHash);
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);
  });

  it('a flood of decisions is bounded: 200 records kept, the rest counted; a valid approval still counts', async () => {
    const t = await h.demoTarget();
    const handle = await h.startRun({ environment: t.envName, requester: 'rita' });
    const { planHash } = await h.waitForApproval(handle);
    for (let i = 0; i < 210; i++) await handle.signal(approveSignal, { by: `mallory${i}`, planHash: planHash! });
    await handle.signal(approveSignal, { by: 'x'.repeat(65), planHash: planHash!, comment: 'c'.repeat(5000) });
    await handle.signal(approveSignal, { by: 'Alice\u200b', planHash: planHash! });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect(result.approval.records).toHaveLength(201);
    expect(result.approval.dropped).toBe(11);
    expect(result.approval.records.at(-1)).toMatchObject({ by: 'Alice\u200b', accepted: true, auth: 'unsigned' });
    expect(JSON.stringify(result).length).toBeLessThan(200_000);
  });

  it('the same plan on another run has another hash, so an approval cannot move between runs', async () => {
    const t = await h.demoTarget();
    const first = (await (await h.startRun({ environment: t.envName, dryRun: true })).result()) as RunbookResult;
    const second = (await (await h.startRun({ environment: t.envName, dryRun: true })).result()) as RunbookResult;
    expect(second.plan).toEqual(first.plan);
    expect(second.planHash).not.toBe(first.planHash);
  });
});

describe('runbook keys', () => {
  it('init writes a private key (0600 in a 0700 directory) and prints the line for the environment file; it never overwrites', async () => {
    const env = h.env({ RUNBOOK_CONFIG_DIR: join(h.root, 'fresh-config') });
    const created = await runbook(['keys', 'init', '--name', 'Dana'], env);
    expect(created.code, created.stderr).toBe(0);
    const file = personKeyPath('dana', { RUNBOOK_CONFIG_DIR: join(h.root, 'fresh-config') });
    expect(created.stdout).toContain(`private key written to ${file} (0600)`);
    expect(created.stdout).toMatch(/- \{ name: Dana, key: "ed25519:[A-Za-z0-9+/]{43}=" \}/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(file, '..')).mode & 0o777).toBe(0o700);
    const again = await runbook(['keys', 'init', '--name', 'dana'], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already exists');
    const shown = await runbook(['keys', 'show', '--name', 'DANA'], env);
    expect(shown.stdout).toContain(created.stdout.match(/ed25519:[^"]+/)![0]);
  });
});
