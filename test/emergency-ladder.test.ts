import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { createMigrationActivities } from '../src/activities/migration/index.js';
import { personKeyPath } from '../src/activities/keys.js';
import { buildDecision } from '../src/cli/commands/decide.js';
import { EXIT_CODES } from '../src/shared/constants.js';
import { abortSignal, approveSignal, rejectSignal, statusQuery } from '../src/shared/messages.js';
import type { EmergencyLadderInput } from '../src/shared/schemas/migration-inputs.js';
import type { RunbookResult, RunbookStatus } from '../src/shared/types.js';
import { runbook, temporal } from './support/cli.js';
import { Harness } from './support/harness.js';
import { saveHistory } from './support/histories.js';
import { captureWebhook } from './support/webhook.js';
import { jobTarget, type Backend, type JobTestTarget } from './support/migration.js';

const h = new Harness();
beforeAll(() => h.start());
afterAll(() => h.close());

let counter = 0;
const quiet = pino({ level: 'silent' });
const migration = () => createMigrationActivities({ environmentsDir: h.environmentsDir, log: quiet });

/** The emergency section of a test target: short health waits, the levels' approvals as given. */
const emergency = (levels: Record<string, unknown> = {}) => ({
  emergency: {
    set: {
      'data_backend.primary': 'heavydb',
      'data_backend.dual_write': 'false',
      'data_backend.cutover_percent': '0',
      'data_backend.phase': 'primary-only',
    },
    levels: { restart: 'automatic', lastKnownGood: 'automatic', emergencyConfig: 'automatic', ...levels },
    healthWithin: '3s',
  },
});

/** The processor's INI with [data_backend] set to these values (everything else as written). */
type IniKey = 'primary' | 'secondary' | 'dual_write' | 'cutover_percent' | 'phase';
function withBackend(t: JobTestTarget, values: Partial<Record<IniKey, string>>): string {
  let text = t.readIni();
  for (const [key, value] of Object.entries(values))
    text = text.replace(new RegExp(`^${key} = .*$`, 'm'), `${key} = ${value}`);
  return text;
}

/** Faults that survive a restart: the processor re-reads its faults file. */
function faults(t: JobTestTarget, f: Partial<Record<Backend, { mode: 'fail' }>>): void {
  writeFileSync(t.faultsFile, JSON.stringify(f));
}

/** The INI as it is now is the last known good; then `broken` is written and the processor reloads it. */
async function saveGoodThenBreak(t: JobTestTarget, broken: string): Promise<Buffer> {
  await migration().snapshotLastKnownGood({ environment: t.envName, target: 'jobs' });
  const good = t.iniBytes();
  t.writeIni(broken);
  await t.reload();
  return good;
}

function start(t: JobTestTarget, input: Partial<EmergencyLadderInput> = {}): Promise<WorkflowHandle> {
  return h.client.workflow.start('emergencyLadder', {
    taskQueue: h.taskQueue,
    workflowId: `ladder-${h.taskQueue}-${counter++}`,
    args: [{ environment: t.envName, target: 'jobs', requester: 'rita', reason: 'jobs failing', ...input }],
  });
}

const ladderOf = (r: RunbookResult) => r.extra!.ladder as Record<string, any>;
const stepStatus = (s: RunbookStatus, name: string) => s.steps.find((x) => x.name === name)?.status;
const evidenceOf = (r: RunbookResult) => JSON.parse(readFileSync(r.evidence!.path, 'utf8'));

async function unhealthy(t: JobTestTarget): Promise<void> {
  for (let i = 0; i < 100 && (await t.health()).status === 200; i++) await new Promise((r) => setTimeout(r, 50));
  expect((await t.health()).status).toBe(503);
}

describe('emergency ladder on the demo job processor', () => {
  it('stops at level 1: a wedged process is healthy after the restart; the configuration is untouched', async () => {
    const t = await jobTarget(h, { migration: emergency() });
    const before = t.iniBytes();
    const pid = (await t.stats()).pid;
    await t.wedge();
    await unhealthy(t);

    // started as an operator would (the README's command); --wait exits with the outcome's code
    const started = await runbook(
      ['start', 'emergency-ladder', '--env', t.envName, '--target', 'jobs', '--requester', 'rita'].concat([
        '--reason',
        'jobs stuck',
        '--wait',
      ]),
      h.env(),
    );
    expect(started.code, started.stderr).toBe(EXIT_CODES.succeeded);
    const handle = h.client.workflow.getHandle(`emergency-ladder--${t.envName}--jobs`);
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect(ladderOf(result)).toMatchObject({
      startLevel: 1,
      healthyAfter: 1,
      outcome: 'healthy after level 1 (restart)',
      levels: [{ level: 1, action: 'restart', approval: 'automatic', healthy: true }],
    });
    expect(result.results?.ladder).toMatchObject({ healthyAfter: 1 });
    expect(stepStatus(result, 'level 1 health check')).toBe('succeeded');
    expect(stepStatus(result, 'level 2 restore last known good')).toBe('skipped');
    expect(result.approval.stages?.map((s) => [s.stage, s.status])).toEqual([['level 1 approval', 'automatic']]);
    expect(t.iniBytes().equals(before)).toBe(true);
    expect((await t.stats()).pid).not.toBe(pid);
    expect((await t.health()).status).toBe(200);
    const doc = evidenceOf(result);
    expect(doc.extra.ladder.healthyAfter).toBe(1);
    expect(doc.stages.map((s: { stage: string; policy: unknown }) => [s.stage, s.policy])).toEqual([
      ['level 1 approval', 'automatic'],
    ]);
  });

  it('stops at level 2: a broken configuration is replaced by the last known good; failed_backup keeps it', async () => {
    const t = await jobTarget(h, { migration: emergency() });
    faults(t, { parquet: { mode: 'fail' } });
    const broken = withBackend(t, { primary: 'parquet' });
    const good = await saveGoodThenBreak(t, broken);
    await unhealthy(t);

    const handle = await start(t);
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect(ladderOf(result)).toMatchObject({
      healthyAfter: 2,
      outcome: 'healthy after level 2 (last known good configuration)',
      levels: [
        { level: 1, healthy: false, problem: expect.stringMatching(/unhealthy/) },
        { level: 2, approval: 'automatic', healthy: true },
      ],
      failedBackup: { file: expect.stringMatching(/\.failed_backup$/) },
    });
    expect(t.iniBytes().equals(good)).toBe(true);
    const failedBackup = ladderOf(result).failedBackup.file as string;
    expect(readFileSync(failedBackup, 'utf8')).toBe(broken);
    expect(stepStatus(result, 'level 3 set emergency configuration')).toBe('skipped');
    expect(result.compensations).toEqual([]);
    await saveHistory(h.client, handle.workflowId, 'healthy-after-level-2', 'emergency-ladder');
  });

  it('escalates past level 3 when both backends fail: the contacts are notified, the emergency configuration stays', async () => {
    const hook = await captureWebhook('TEST_LADDER_WEBHOOK_URL');
    const { received } = hook;
    try {
      const t = await jobTarget(h, {
        migration: emergency(),
        sections: { notifications: { pager: { type: 'webhook', urlEnv: 'TEST_LADDER_WEBHOOK_URL' } } },
        escalation: [
          { level: 1, after: '0s', contact: 'on-call engineer' },
          { level: 2, after: '30m', contact: 'devops lead' },
        ],
      });
      faults(t, { heavydb: { mode: 'fail' }, parquet: { mode: 'fail' } });
      await saveGoodThenBreak(t, withBackend(t, { primary: 'parquet' }));
      await unhealthy(t);

      const handle = await start(t);
      const result = (await handle.result()) as RunbookResult;
      expect(result.outcome).toBe('escalated');
      expect(result.error).toMatch(
        /^nothing helped: the service is still unhealthy after levels 1, 2, 3; escalated to on-call engineer, devops lead$/,
      );
      expect(ladderOf(result)).toMatchObject({
        healthyAfter: null,
        outcome: 'nothing helped: escalated to people, the emergency configuration left in place',
        escalatedTo: ['on-call engineer', 'devops lead'],
        levels: [
          { level: 1, healthy: false },
          { level: 2, healthy: false },
          { level: 3, healthy: false },
        ],
      });
      // the emergency configuration is left in place on purpose, and the evidence says so
      expect(t.readIni()).toMatch(/^primary = heavydb$/m);
      expect(t.readIni()).toMatch(/^phase = primary-only$/m);
      expect(result.compensations.map((c) => [c.step, c.status])).toEqual([
        ['level 3 set emergency configuration', 'kept'],
        ['level 2 restore last known good', 'kept'],
      ]);
      expect(result.escalation.history.map((e) => [e.contact, e.delivered])).toEqual([
        ['on-call engineer', true],
        ['devops lead', true],
      ]);
      expect(received).toHaveLength(2);
      expect(received[0]!.text).toContain('emergency ladder exhausted');
      expect(received[0]!.text).toContain('contact: on-call engineer');
      expect(received[1]!.text).toContain('contact: devops lead');
      expect(evidenceOf(result).compensations[0].reason).toMatch(/safest state to hand over/);
      const watched = await runbook(['watch', handle.workflowId], h.env());
      expect(watched.code).toBe(EXIT_CODES.escalated);
      const postmortem = await runbook(['report', handle.workflowId, '--postmortem'], h.env());
      expect(postmortem.stdout).toContain(
        '- Left in place on purpose: level 3 set emergency configuration (the ladder escalated to people',
      );
      expect(postmortem.stdout).toContain(`- Services affected: ${t.envName}/jobs: processor`);
      await saveHistory(h.client, handle.workflowId, 'escalated', 'emergency-ladder');
    } finally {
      hook.close();
    }
  });

  it('a level with an approval policy waits for it; a rejection ends the run and the configuration is put back exactly', async () => {
    const t = await jobTarget(h, {
      migration: emergency({ emergencyConfig: { approvers: ['alice', 'bob'], quorum: 1, timeout: '10m' } }),
    });
    // an invalid percent: unhealthy whatever the faults; the last known good routes to heavydb, which fails
    faults(t, { heavydb: { mode: 'fail' } });
    t.writeIni(withBackend(t, { dual_write: 'true', phase: 'dual-write' }));
    const broken = withBackend(t, { cutover_percent: '150' });
    await saveGoodThenBreak(t, broken);
    const found = t.iniBytes();
    await unhealthy(t);

    const handle = await start(t);
    const waiting = await h.waitFor(handle, (s) => s.approval.stage === 'level 3 approval');
    expect(waiting.approval.waiting).toBe(true);
    expect(stepStatus(waiting, 'level 3 approval')).toBe('running');
    const stage = waiting.approval.stages!.find((s) => s.stage === 'level 3 approval')!;
    expect(stage).toMatchObject({ status: 'waiting', policy: { approvers: ['alice', 'bob'], quorum: 1 } });
    expect(stage.plan.changes).toEqual([
      { item: 'data_backend.dual_write', from: 'true', to: 'false' },
      { item: 'data_backend.phase', from: 'dual-write', to: 'primary-only' },
    ]);
    // the last known good is in place while level 3 waits
    expect(t.iniBytes().equals(found)).toBe(false);
    const status = await runbook(['status', handle.workflowId], h.env());
    expect(status.stdout).toContain(`level 3 approval: waiting`);

    await handle.signal(rejectSignal, { by: 'alice', comment: 'not the emergency config, call the DBA' });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('rejected');
    expect(result.error).toBe('"level 3 approval" rejected by alice: not the emergency config, call the DBA');
    expect(result.compensations.map((c) => [c.step, c.status])).toEqual([
      ['level 2 restore last known good', 'succeeded'],
    ]);
    expect(t.iniBytes().equals(found)).toBe(true);
    expect(result.approval.records.map((r) => [r.kind, r.stage, r.accepted])).toEqual([
      ['reject', 'level 3 approval', true],
    ]);
    await saveHistory(h.client, handle.workflowId, 'rejected-at-level-3', 'emergency-ladder');
  });

  it('an abort during level 3 undoes level 3, then level 2: the configuration as found, byte for byte', async () => {
    const t = await jobTarget(h, { migration: emergency() });
    faults(t, { heavydb: { mode: 'fail' }, parquet: { mode: 'fail' } });
    // the last known good differs from the emergency configuration, so each level writes something
    t.writeIni(withBackend(t, { dual_write: 'true', phase: 'dual-write' }));
    await saveGoodThenBreak(t, withBackend(t, { primary: 'parquet' }));
    const found = t.iniBytes();
    await unhealthy(t);

    const handle = await start(t);
    await h.waitFor(handle, (s) => s.currentStep === 'level 3 health check');
    expect(t.readIni()).toMatch(/^dual_write = false$/m);
    await handle.signal(abortSignal, { by: 'alice', reason: 'taking over by hand' });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('aborted');
    expect(result.compensations.map((c) => [c.step, c.status])).toEqual([
      ['level 3 set emergency configuration', 'succeeded'],
      ['level 2 restore last known good', 'succeeded'],
    ]);
    expect(stepStatus(result, 'level 3 set emergency configuration')).toBe('compensated');
    expect(t.iniBytes().equals(found)).toBe(true);
    expect(ladderOf(result).healthyAfter).toBeNull();
    await saveHistory(h.client, handle.workflowId, 'abort-during-level-3', 'emergency-ladder');
  });

  it('`temporal workflow cancel` while level 3 waits for approval puts the configuration as found back', async () => {
    const t = await jobTarget(h, { migration: emergency({ emergencyConfig: { quorum: 1, timeout: '10m' } }) });
    faults(t, { heavydb: { mode: 'fail' } });
    await saveGoodThenBreak(t, withBackend(t, { cutover_percent: '150' }));
    const found = t.iniBytes();
    await unhealthy(t);

    const handle = await start(t);
    await h.waitFor(handle, (s) => s.approval.stage === 'level 3 approval');
    expect(t.iniBytes().equals(found)).toBe(false);
    const cancelled = await temporal(['workflow', 'cancel', '--workflow-id', handle.workflowId], h.address);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(await h.waitForClosed(handle.workflowId)).toBe('CANCELLED');
    expect(t.iniBytes().equals(found)).toBe(true);
    const status = await handle.query(statusQuery);
    expect(status.outcome).toBe('cancelled');
    expect(status.compensations.map((c) => [c.step, c.status])).toEqual([
      ['level 2 restore last known good', 'succeeded'],
    ]);
    await saveHistory(h.client, handle.workflowId, 'cancelled-at-level-3-approval', 'emergency-ladder');
  });

  it('signed per-stage approvals: a decision for one stage never counts for another; runbook approve and temporal workflow signal decide the stage waiting', async () => {
    const alice = await h.personKey('alice');
    const bob = await h.personKey('bob');
    const signed = {
      approvers: [
        { name: 'alice', key: alice.publicKey },
        { name: 'bob', key: bob.publicKey },
      ],
      quorum: 1,
      requireSignatures: true,
      timeout: '10m',
    };
    const t = await jobTarget(h, {
      approval: signed,
      migration: emergency({ lastKnownGood: signed, emergencyConfig: signed }),
    });
    faults(t, { parquet: { mode: 'fail' } });
    // the last known good routes to parquet too (a cut-over): only level 3 helps
    t.writeIni(withBackend(t, { cutover_percent: '25', phase: 'cut-over' }));
    await saveGoodThenBreak(t, withBackend(t, { primary: 'parquet', cutover_percent: '0', phase: 'new-only' }));
    await unhealthy(t);

    const handle = await start(t);
    const level2 = await h.waitFor(handle, (s) => s.approval.stage === 'level 2 approval');
    // level 2: bob signs with `runbook approve --print`, the JSON goes through `temporal workflow signal`
    const printed = await runbook(['approve', handle.workflowId, '--by', 'bob', '--print'], h.env());
    expect(printed.code, printed.stderr).toBe(0);
    const level2Hash = level2.approval.stages!.find((s) => s.stage === 'level 2 approval')!.planHash;
    expect(JSON.parse(printed.stdout)).toMatchObject({ planHash: level2Hash });
    const signalled = await temporal(
      ['workflow', 'signal', '--workflow-id', handle.workflowId, '--name', 'approve', '--input', printed.stdout.trim()],
      h.address,
    );
    expect(signalled.code, signalled.stderr).toBe(0);
    const aliceForLevel2 = await buildDecision('approve', level2, {
      by: 'alice',
      key: personKeyPath('alice', { RUNBOOK_CONFIG_DIR: h.configDir }),
      comment: 'signed for level 2',
    });

    const level3 = await h.waitFor(handle, (s) => s.approval.stage === 'level 3 approval');
    const level3Hash = level3.approval.stages!.find((s) => s.stage === 'level 3 approval')!.planHash;
    expect(level3Hash).not.toBe(level2Hash);
    // an attacker replays bob's accepted level-2 approval, and alice's unused one signed for level 2
    await handle.signal(approveSignal, JSON.parse(printed.stdout));
    await handle.signal(approveSignal, aliceForLevel2);
    const replayed = await h.waitFor(handle, (s) => s.approval.records.length === 3);
    const because = `plan ${level2Hash.slice(0, 12)} is stage "level 2 approval"'s, not the waiting stage "level 3 approval"'s`;
    expect(replayed.approval.records.map((r) => [r.by, r.stage, r.accepted ? 'accepted' : r.ignoredBecause])).toEqual([
      ['bob', 'level 2 approval', 'accepted'],
      ['bob', 'level 3 approval', because],
      ['alice', 'level 3 approval', because],
    ]);
    expect(replayed.approval.waiting).toBe(true);
    expect(stepStatus(replayed, 'level 3 set emergency configuration')).toBe('pending');

    // `runbook approve` decides the stage waiting
    const approved = await runbook(['approve', handle.workflowId, '--by', 'alice'], h.env());
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toContain('approve for stage "level 3 approval" by alice accepted, signed with key');
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect(ladderOf(result)).toMatchObject({
      healthyAfter: 3,
      levels: [
        { level: 1, approval: 'automatic', healthy: false },
        { level: 2, approval: 'approved by bob', healthy: false },
        { level: 3, approval: 'approved by alice', healthy: true },
      ],
    });
    expect(result.approval.stages!.map((s) => [s.stage, s.status, s.approvedBy])).toEqual([
      ['level 1 approval', 'automatic', []],
      ['level 2 approval', 'approved', ['bob']],
      ['level 3 approval', 'approved', ['alice']],
    ]);
    expect(t.readIni()).toMatch(/^primary = heavydb$/m);
    const report = await runbook(['report', handle.workflowId], h.env());
    expect(report.code, report.stderr).toBe(0);
    expect(report.stdout).toContain('## Approval stages');
    expect(report.stdout).toContain('approve (stage "level 3 approval") by **alice** [signed');
    // the exported bundle verifies (every stage's plan hash is the hash of its stage and plan); a changed stage does not
    const out = join(mkdtempSync(join(tmpdir(), 'ladder-')), 'bundle');
    expect((await runbook(['evidence', handle.workflowId, '--out', out], h.env())).code).toBe(0);
    const anchors = ['--worker-key', h.workerKey.publicKey, '--server', h.address];
    const verified = await runbook(['verify-evidence', out, ...anchors], h.env());
    expect(verified.code, verified.stderr).toBe(0);
    const file = join(out, 'evidence.json');
    writeFileSync(file, readFileSync(file, 'utf8').replace('"status": "approved"', '"status": "automatic"'));
    const tampered = await runbook(['verify-evidence', out, ...anchors], h.env());
    expect(tampered.code).toBe(1);
    expect(tampered.stderr).toContain('MISMATCH evidence.json: "stages" differs from what the chain records');
    await saveHistory(h.client, handle.workflowId, 'signed-stages', 'emergency-ladder');
  });

  it('dry run: seals the ladder plan and ends; nothing restarts, nothing is written', async () => {
    const t = await jobTarget(h, { migration: emergency() });
    const pid = (await t.stats()).pid;
    const before = t.iniBytes();
    // started as an operator would with the temporal CLI (the README's command)
    const id = `ladder-dry-${counter++}`;
    const input = {
      environment: t.envName,
      target: 'jobs',
      requester: 'rita',
      reason: 'dry',
      dryRun: true,
      startLevel: 2,
    };
    const started = await temporal(
      ['workflow', 'start', '--type', 'emergencyLadder', '--task-queue', h.taskQueue, '--workflow-id', id].concat([
        '--input',
        JSON.stringify(input),
      ]),
      h.address,
    );
    expect(started.code, started.stderr).toBe(0);
    const result = (await h.client.workflow.getHandle(id).result()) as RunbookResult;
    expect(result.outcome).toBe('dry_run');
    expect(result.plan!.summary).toMatch(/^emergency ladder for .*\/jobs from level 2: L2 last known good/);
    expect(result.approval.stages).toBeUndefined();
    expect(stepStatus(result, 'level 2 restore last known good')).toBe('skipped');
    expect(t.iniBytes().equals(before)).toBe(true);
    expect((await t.stats()).pid).toBe(pid);
    expect(existsSync(`${t.lastKnownGoodDir}`)).toBe(false);
    // and with the CLI (the README's command)
    const cli = await runbook(
      ['start', 'emergency-ladder', '--env', t.envName, '--target', 'jobs', '--input', '{"startLevel":2}'].concat([
        '--dry-run',
        '--wait',
      ]),
      h.env(),
    );
    expect(cli.code, cli.stderr).toBe(EXIT_CODES.dry_run);
    expect(t.iniBytes().equals(before)).toBe(true);
    expect((await t.stats()).pid).toBe(pid);
  });

  it('invalid input is InvalidInput naming the field, before anything changes', async () => {
    const t = await jobTarget(h, { migration: emergency({ emergencyConfig: { quorum: 1 } }) });
    for (const [input, field] of [
      [{ startLevel: 4 }, 'startLevel'],
      [{ approval: { timeout: '2h' } }, 'approval.timeout'],
    ] as const) {
      const handle = await start(t, input as never);
      const err = await handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
      expect(cause.type).toBe('InvalidInput');
      expect(cause.message).toContain(field);
    }
  });
});
