import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES, EXIT_USAGE } from '../src/shared/constants.js';
import type { RunbookStatus } from '../src/shared/types.js';
import { Harness } from './support/harness.js';
import { runbook, temporal, temporalStart, startFlagRollback } from './support/cli.js';
import { saveHistory } from './support/histories.js';

const h = new Harness();
beforeAll(() => h.start());
afterAll(() => h.close());

async function workflowsOnQueue(): Promise<number> {
  let n = 0;
  for await (const _wf of h.client.workflow.list({ query: `TaskQueue = '${h.taskQueue}'` })) n++;
  return n;
}

describe('runbook CLI', () => {
  it('rejects bad input with a clear message and a non-zero exit, starting nothing', async () => {
    const t = await h.demoTarget();
    writeFileSync(
      join(h.environmentsDir, 'broken.yaml'),
      'targets:\n  web:\n    flags: { store: { type: env-file } }\n',
    );
    const cases: Array<[string[], RegExp]> = [
      [
        ['start', 'no-such-runbook', '--env', t.envName],
        /unknown runbook "no-such-runbook" \(known: feature-flag-rollback, dual-write-rollback, dual-write-check, sqlite-/,
      ],
      [startFlagRollback(t.envName, '{"mode": '), /--input: malformed JSON/],
      [startFlagRollback(t.envName, '{"mode":"nuke"}'), /invalid input: mode:/],
      [
        ['start', 'feature-flag-rollback', '--env', t.envName, '--input', '{"mode":"disable-dual-write"}'],
        /invalid input: target:/,
      ],
      [
        startFlagRollback('nowhere', '{"mode":"disable-dual-write"}'),
        /unknown environment "nowhere": .*nowhere\.yaml does not exist/,
      ],
      [
        startFlagRollback('broken', '{"mode":"disable-dual-write"}'),
        /invalid environment: .*broken\.yaml: targets\.web\.flags\.store\.path: .*/,
      ],
      [startFlagRollback(t.envName, '@/nonexistent/input.json'), /--input: cannot read \/nonexistent\/input\.json/],
      [startFlagRollback('Bad;Name', '{"mode":"disable-dual-write"}'), /invalid input: environment: must be lowercase/],
      [
        startFlagRollback(t.envName, '{"mode":"disable-dual-write","approval":{"timeout":"9h"}}'),
        /invalid input: approval\.timeout: 9h is longer than the environment's 1h \(input may only tighten the policy\)/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await runbook(args, h.env());
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(EXIT_USAGE);
      expect(r.stderr).toMatch(message);
    }
    expect(await workflowsOnQueue()).toBe(0);
  });

  it('start → busy refusal → status → ignored and accepted approvals → watch → evidence → verify-evidence', async () => {
    const t = await h.demoTarget({ quietWindow: '1s' });
    const start = startFlagRollback(
      t.envName,
      '{"mode":"disable-dual-write"}',
      '--requester',
      'rita',
      '--reason',
      'latency',
    );
    const started = await runbook(start, h.env());
    expect(started.code, started.stderr).toBe(0);
    const id = `feature-flag-rollback--${t.envName}--web`;
    expect(started.stdout).toContain(`workflow id: ${id}`);

    const busy = await runbook(start, h.env());
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain(`target ${t.envName}/web is busy: workflow "${id}" (feature-flag-rollback) holds it`);
    const busyOtherId = await runbook([...start, '--id', 'my-own-id'], h.env());
    expect(busyOtherId.code).toBe(1);
    expect(busyOtherId.stderr).toContain(`workflow "${id}" (feature-flag-rollback) holds it`);

    await h.waitForApproval(h.client.workflow.getHandle(id));
    const status = await runbook(['status', id], h.env());
    expect(status.stdout).toContain('approvals 0/1 (waiting)');
    expect(status.stdout).toContain('TEAM_VNEXT_DUAL_WRITE_ENABLED: true → false');
    const json = JSON.parse((await runbook(['status', id, '--json'], h.env())).stdout) as RunbookStatus;
    expect(json.currentStep).toBe('approval');

    const mallory = await runbook(['approve', id, '--by', 'mallory'], h.env());
    expect(mallory.code).toBe(1);
    expect(mallory.stderr).toContain('approve by mallory was ignored: mallory is not an allowed approver');
    const stale = await runbook(['approve', id, '--by', 'alice', '--plan', '0123456789ab'], h.env());
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('stale plan hash 0123456789ab');
    const ok = await runbook(['approve', id, '--by', 'alice', '--comment', 'lgtm'], h.env());
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('approve by alice accepted, unsigned (1/1 approvals)');

    const watched = await runbook(['watch', id], h.env());
    expect(watched.code).toBe(0);
    expect(watched.stdout).toContain('verify no dual writes: succeeded');
    expect(watched.stdout).toContain('outcome: SUCCEEDED');
    expect(readFileSync(t.envFile, 'utf8')).toContain('TEAM_VNEXT_DUAL_WRITE_ENABLED=false');

    const out = join(mkdtempSync(join(h.root, 'evidence-')), 'bundle');
    const exported = await runbook(['evidence', id, '--out', out], h.env());
    expect(exported.code, exported.stderr).toBe(0);
    for (const f of ['history.json', 'evidence.json', 'report.md', 'SHA256SUMS'])
      expect(existsSync(join(out, f))).toBe(true);
    const report = readFileSync(join(out, 'report.md'), 'utf8');
    expect(report).toContain('# feature-flag-rollback: SUCCEEDED');
    expect(report).toMatch(/approve by \*\*alice\*\* \[unsigned\]: accepted — lgtm/);
    expect(report).toContain('## Phase durations');

    // our history export is the same document `temporal workflow show --output json` prints
    const shown = await temporal(['workflow', 'show', '--workflow-id', id, '--output', 'json'], h.address);
    const ours = JSON.parse(readFileSync(join(out, 'history.json'), 'utf8'));
    const theirs = JSON.parse(shown.stdout);
    expect(ours.events.map((e: { eventId: string; eventType: string }) => [String(e.eventId), e.eventType])).toEqual(
      theirs.events.map((e: { eventId: string; eventType: string }) => [String(e.eventId), e.eventType]),
    );

    // nothing outside the bundle vouches for it yet: not verified
    const unanchored = await runbook(['verify-evidence', out], h.env());
    expect(unanchored.code).toBe(1);
    expect(unanchored.stderr).toContain('MISMATCH not anchored: no trusted worker key vouches for the chain head');
    const anchors = ['--worker-key', h.workerKey.publicKey, '--server', h.address];
    const verified = await runbook(['verify-evidence', out, ...anchors], h.env());
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toContain(`anchor: chain head signed by trusted worker key ${h.workerKey.keyId}`);
    expect(verified.stdout).toContain(`anchor: history.json is the history on ${h.address}`);
    expect(verified.stdout).toContain('evidence verified');

    // one changed byte anywhere is caught
    const evidencePath = join(out, 'evidence.json');
    const original = readFileSync(evidencePath, 'utf8');
    writeFileSync(evidencePath, original.replace('"approved by alice"', '"approved by alicf"'));
    const tampered = await runbook(['verify-evidence', out, ...anchors], h.env());
    expect(tampered.code).toBe(1);
    expect(tampered.stderr).toContain('MISMATCH evidence.json: sha256 differs from the manifest');
    expect(tampered.stderr).toContain('MISMATCH evidence.json: "steps" differs from what the chain records');
    writeFileSync(evidencePath, original.replaceAll('"approved by alice"', '"approved by alicf"'));
    const rechained = await runbook(['verify-evidence', out, ...anchors], h.env());
    expect(rechained.code).toBe(1);
    expect(rechained.stderr).toMatch(
      /MISMATCH evidence.json: chain\[\d+\] \(step\): hash mismatch, the record was changed/,
    );
    writeFileSync(evidencePath, original);
    const reportPath = join(out, 'report.md');
    writeFileSync(reportPath, report.replace('SUCCEEDED', 'SUCCEEDEE'));
    const tamperedReport = await runbook(['verify-evidence', out, ...anchors], h.env());
    expect(tamperedReport.code).toBe(1);
    expect(tamperedReport.stderr).toContain('MISMATCH report.md: sha256 differs from the manifest');
  });

  it('start --dry-run --wait prints the plan outcome and exits 0 without changing anything', async () => {
    const t = await h.demoTarget();
    const r = await runbook(
      startFlagRollback(
        t.envName,
        '{"mode":"block-legacy-writes"}',
        '--requester',
        'rita',
        '--dry-run',
        '--wait',
        '--id',
        `dry-${t.envName}`,
      ),
      h.env(),
    );
    expect(r.code, r.stderr).toBe(EXIT_CODES.dry_run);
    expect(r.stdout).toContain('seal plan: succeeded');
    expect(r.stdout).toContain('outcome: DRY_RUN');
    expect(r.stdout).toMatch(/evidence: .*feature-flag-rollback\/\d{8}\/dry-env[\d-]+\.json/);
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);
  });

  it('reject and abort through the CLI end with their own exit codes', async () => {
    const t = await h.demoTarget({ quietWindow: '60s' });
    const id = `feature-flag-rollback--${t.envName}--web`;
    const start = startFlagRollback(t.envName, '{"mode":"disable-strict-mode"}', '--requester', 'rita');
    expect((await runbook(start, h.env())).code).toBe(0);
    await h.waitForApproval(h.client.workflow.getHandle(id));
    const rejected = await runbook(['reject', id, '--by', 'bob', '--comment', 'no'], h.env());
    expect(rejected.code, rejected.stderr).toBe(0);
    expect((await runbook(['watch', id], h.env())).code).toBe(EXIT_CODES.rejected);

    expect((await runbook(start, h.env())).code).toBe(0);
    await h.waitForApproval(h.client.workflow.getHandle(id));
    expect((await runbook(['approve', id, '--by', 'bob'], h.env())).code).toBe(0);
    await h.waitFor(h.client.workflow.getHandle(id), (s) => s.currentStep === 'verify no dual writes');
    const aborted = await runbook(['abort', id, '--by', 'carol', '--reason', 'wrong target'], h.env());
    expect(aborted.code, aborted.stderr).toBe(0);
    const watched = await runbook(['watch', id], h.env());
    expect(watched.code).toBe(EXIT_CODES.aborted);
    expect(watched.stdout).toContain('outcome: ABORTED');
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);
  });
});

describe('the same runbook through the temporal CLI', () => {
  it('workflow start | query | signal | show, then cancel restores the flags', async () => {
    const t = await h.demoTarget({ quietWindow: '60s' });
    const id = `tctl-${t.envName}`;
    // started without search attributes, as from the Web UI: the workflow sets them itself
    const started = await temporalStart(h, 'featureFlagRollback', id, {
      environment: t.envName,
      target: 'web',
      mode: 'disable-dual-write',
      requester: 'rita',
      reason: 'via temporal CLI',
    });
    expect(started.code, started.stderr).toBe(0);
    await h.waitForApproval(h.client.workflow.getHandle(id));
    const attributes = (await h.client.workflow.getHandle(id).describe()).searchAttributes;
    expect(attributes).toMatchObject({
      RunbookName: ['feature-flag-rollback'],
      Environment: [t.envName],
      Target: ['web'],
    });
    const busy = await runbook(startFlagRollback(t.envName, '{"mode":"disable-dual-write"}'), h.env());
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain(`workflow "${id}" (feature-flag-rollback) holds it`);
    const queried = await temporal(
      ['workflow', 'query', '--workflow-id', id, '--name', 'status', '--output', 'json'],
      h.address,
    );
    expect(queried.code, queried.stderr).toBe(0);
    const status = JSON.parse(queried.stdout).queryResult[0] as RunbookStatus;
    expect(status.approval.waiting).toBe(true);
    const signalled = await temporal(
      [
        'workflow',
        'signal',
        '--workflow-id',
        id,
        '--name',
        'approve',
        '--input',
        JSON.stringify({ by: 'alice', planHash: status.planHash!.slice(0, 16) }),
      ],
      h.address,
    );
    expect(signalled.code, signalled.stderr).toBe(0);
    await h.waitFor(h.client.workflow.getHandle(id), (s) => s.currentStep === 'verify no dual writes');
    expect(readFileSync(t.envFile, 'utf8')).toContain('TEAM_VNEXT_DUAL_WRITE_ENABLED=false');

    const cancelled = await temporal(['workflow', 'cancel', '--workflow-id', id], h.address);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    const watched = await runbook(['watch', id], h.env());
    expect(watched.code).toBe(EXIT_CODES.cancelled);
    const final = (await h.client.workflow.getHandle(id).query('status')) as RunbookStatus;
    expect(final.outcome).toBe('cancelled');
    expect(final.compensations.map((c) => [c.step, c.status])).toEqual([['set flags', 'succeeded']]);
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);
    expect((await t.stats()).reloads).toBe(2);
    const shown = await temporal(['workflow', 'show', '--workflow-id', id, '--output', 'json'], h.address);
    const types = JSON.parse(shown.stdout).events.map((e: { eventType: string }) => e.eventType);
    expect(types).toContain('EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED');
    expect(types[types.length - 1]).toBe('EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED');
    // evidence of a cancelled run (no workflow result) still exports and verifies
    const out = join(mkdtempSync(join(h.root, 'evidence-')), 'cancelled');
    const exported = await runbook(['evidence', id, '--out', out], h.env());
    expect(exported.code, exported.stderr).toBe(0);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain('# feature-flag-rollback: CANCELLED');
    const verifiedCancelled = await runbook(['verify-evidence', out, '--worker-key', h.workerKey.publicKey], h.env());
    expect(verifiedCancelled.code, verifiedCancelled.stderr).toBe(0);
    await saveHistory(h.client, id, 'cancel-from-temporal-cli');
  });
});
