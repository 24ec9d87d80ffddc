import { appendFileSync, existsSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { abortSignal, approveSignal, rejectSignal, statusQuery } from '../src/shared/messages.js';
import type { RunbookResult } from '../src/shared/types.js';
import { chainGenesis, verifyChain } from '../src/activities/evidence/chain.js';
import { renderCommunication } from '../src/activities/evidence/communication.js';
import { renderPostmortem } from '../src/activities/evidence/postmortem.js';
import pg from 'pg';
import { runbook } from './support/cli.js';
import { Harness } from './support/harness.js';
import { saveHistory } from './support/histories.js';
import { captureWebhook } from './support/webhook.js';

const h = new Harness();
beforeAll(() => h.start());
afterAll(() => h.close());

const DUAL = 'TEAM_VNEXT_DUAL_WRITE_ENABLED';

async function approve(handle: WorkflowHandle, by = 'alice'): Promise<void> {
  const status = await h.waitForApproval(handle);
  await handle.signal(approveSignal, { by, planHash: status.planHash!.slice(0, 12) });
}

async function failureOf(handle: WorkflowHandle): Promise<{ type?: string; result?: RunbookResult; cause: unknown }> {
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause;
  if (cause instanceof ApplicationFailure)
    return { type: cause.type ?? undefined, result: cause.details?.[0] as RunbookResult, cause };
  return { cause };
}

function evidenceOf(result: RunbookResult) {
  const doc = JSON.parse(readFileSync(result.evidence!.path, 'utf8'));
  expect(verifyChain(chainGenesis(doc.workflowId, doc.runId), doc.chain, doc.chainHead)).toEqual([]);
  expect(doc.chainHead).toBe(result.evidence!.chainHead);
  return doc;
}

describe('feature-flag rollback against a real dev server and a real demo service', () => {
  it('approve path: flags set, service reloaded once, verified, notified, evidence chained', async () => {
    const t = await h.demoTarget();
    const handle = await h.startRun({ environment: t.envName, incidentTicket: 'INC-7' });
    const waiting = await h.waitForApproval(handle);
    expect(waiting.plan!.changes).toEqual([{ item: DUAL, from: 'true', to: 'false' }]);
    expect(waiting.planHash).toMatch(/^[0-9a-f]{64}$/);
    expect(waiting.steps.find((s) => s.name === 'set flags')!.status).toBe('pending');
    await t.write(3);
    await handle.signal(approveSignal, { by: 'alice', planHash: waiting.planHash!, comment: 'go' });
    const result = (await handle.result()) as RunbookResult;

    expect(result.outcome).toBe('succeeded');
    expect(result.steps.map((s) => [s.name, s.status])).toEqual([
      ['lock target', 'succeeded'],
      ['load environment', 'succeeded'],
      ['read current flags', 'succeeded'],
      ['seal plan', 'succeeded'],
      ['approval', 'succeeded'],
      ['set flags', 'succeeded'],
      ['reload service', 'succeeded'],
      ['verify flags live', 'succeeded'],
      ['verify health', 'succeeded'],
      ['verify no dual writes', 'succeeded'],
      ['notify', 'succeeded'],
    ]);
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags.replace(`${DUAL}=true`, `${DUAL}=false`));
    expect((await t.liveFlags())[DUAL]).toBe('false');
    const stats = await t.stats();
    expect(stats.reloads).toBe(1);
    expect(stats.flagChanges).toBe(1);
    const dualWritesBefore = stats.dualWrites;
    await t.write(3);
    expect((await t.stats()).dualWrites).toBe(dualWritesBefore);
    // in Postgres: the 3 writes before the rollback went to both backends, the 3 after only to legacy
    const db = new pg.Client({ connectionString: h.databaseUrl });
    await db.connect();
    const rows = await db.query(
      `SELECT backend, count(*)::int AS n, max(write_id) AS last FROM ${t.table} GROUP BY backend ORDER BY backend`,
    );
    await db.end();
    expect(rows.rows).toEqual([
      { backend: 'legacy', n: 6, last: 6 },
      { backend: 'vnext', n: 3, last: 3 },
    ]);

    const doc = evidenceOf(result);
    expect(doc.outcome).toBe('succeeded');
    expect(doc.approvals).toMatchObject([{ kind: 'approve', by: 'alice', accepted: true, comment: 'go' }]);
    expect(doc.extra.notification).toContain(`- ${DUAL}: false`);
    expect(doc.extra.notification).toContain('**Incident Ticket:** INC-7');
    expect(doc.extra).toMatchObject({ incidentTicket: 'INC-7', flags: { [DUAL]: 'false' } });
    // the communication from the CLI: the notification the run sent (dated by the run's end, not the send)
    const comm = await runbook(['report', handle.workflowId, '--communication'], h.env());
    expect(comm.code).toBe(0);
    expect(comm.stdout).toBe(`${renderCommunication(doc)}\n`);
    const undated = (text: string) => text.replace(/\*\*Date:\*\* .*\n/, '');
    expect(undated(comm.stdout)).toBe(undated(`${doc.extra.notification}\n`));
    const pm = await runbook(['report', handle.workflowId, '--postmortem'], h.env());
    expect(pm.stdout).toBe(renderPostmortem(doc));
    expect(pm.stdout).toContain(`- State after the run:\n  - ${DUAL}: false\n`);
    expect(doc.phases.map((p: { phase: string }) => p.phase)).toEqual(['prepare', 'approval', 'execute', 'finalize']);
    const described = await handle.describe();
    expect(described.typedSearchAttributes.get({ name: 'Outcome', type: 'KEYWORD' } as never)).toBe('succeeded');
    await saveHistory(h.client, handle.workflowId, 'approve-path');
  });

  it('reject path: nothing changes and the run ends rejected', async () => {
    const t = await h.demoTarget();
    const handle = await h.startRun({ environment: t.envName });
    await h.waitForApproval(handle);
    await handle.signal(rejectSignal, { by: 'bob', comment: 'not during the sale' });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('rejected');
    expect(result.steps.find((s) => s.name === 'approval')!.error).toBe('rejected by bob: not during the sale');
    expect(result.steps.filter((s) => s.status === 'skipped').map((s) => s.name)).toEqual([
      'set flags',
      'reload service',
      'verify flags live',
      'verify health',
      'verify no dual writes',
      'notify',
    ]);
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);
    expect((await t.stats()).reloads).toBe(0);
    expect(result.compensations).toEqual([]);
    expect(evidenceOf(result).outcome).toBe('rejected');
    await saveHistory(h.client, handle.workflowId, 'reject-path');
  });

  it('abort after the flags changed: env file restored byte-identical, service reloaded, outcome aborted', async () => {
    const t = await h.demoTarget({ quietWindow: '60s' });
    const handle = await h.startRun({ environment: t.envName });
    await approve(handle);
    await h.waitFor(handle, (s) => s.currentStep === 'verify no dual writes');
    expect(readFileSync(t.envFile, 'utf8')).not.toBe(t.initialFlags);
    await handle.signal(abortSignal, { by: 'carol', reason: 'wrong service' });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('aborted');
    expect(result.abort).toMatchObject({ by: 'carol', reason: 'wrong service' });
    expect(result.compensations.map((c) => [c.step, c.status])).toEqual([['set flags', 'succeeded']]);
    expect(result.steps.find((s) => s.name === 'set flags')!.status).toBe('compensated');
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);
    expect((await t.liveFlags())[DUAL]).toBe('true');
    expect((await t.stats()).reloads).toBe(2);
    expect(evidenceOf(result).compensations).toHaveLength(1);
    await saveHistory(h.client, handle.workflowId, 'abort-after-change');
  });

  it('approval timeout: escalations fire in order, outcome timed_out, nothing changes', async () => {
    const t = await h.demoTarget({
      approval: { approvers: ['alice'], quorum: 1, timeout: '4s' },
      escalation: [
        { level: 1, after: '0s', contact: 'on-call' },
        { level: 2, after: '1s', contact: 'devops lead' },
        { level: 3, after: '2s', contact: 'dba' },
        { level: 4, after: '1h', contact: 'manager' },
      ],
    });
    const handle = await h.startRun({ environment: t.envName });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('timed_out');
    expect(result.escalation.history.map((e) => [e.level, e.contact, e.delivered])).toEqual([
      [1, 'on-call', true],
      [2, 'devops lead', true],
      [3, 'dba', true],
    ]);
    const times = result.escalation.history.map((e) => Date.parse(e.at));
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(1000);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(1000);
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);
    expect((await t.stats()).reloads).toBe(0);
    await saveHistory(h.client, handle.workflowId, 'approval-timeout');
  });

  it('ignores unauthorized approvers, stale plan hashes, self-approval and duplicates; quorum 2 needs two people', async () => {
    const t = await h.demoTarget({ approval: { approvers: ['alice', 'bob', 'rita'], quorum: 2, timeout: '1h' } });
    const handle = await h.startRun({ environment: t.envName, requester: 'rita' });
    const { planHash } = await h.waitForApproval(handle);
    await handle.signal(approveSignal, { by: 'mallory', planHash: planHash! });
    await handle.signal(approveSignal, { by: 'alice', planHash: 'deadbeefdeadbeef' });
    await handle.signal(approveSignal, { by: 'alice', planHash: planHash!.slice(0, 8) });
    await handle.signal(approveSignal, { by: 'rita', planHash: planHash! });
    await handle.signal(approveSignal, { by: 'alice', planHash: planHash! });
    await handle.signal(approveSignal, { by: 'alice', planHash: planHash! });
    const status = await h.waitFor(handle, (s) => s.approval.records.length === 6);
    expect(status.approval.records.map((r) => [r.by, r.accepted, r.ignoredBecause])).toEqual([
      ['mallory', false, 'mallory is not an allowed approver'],
      ['alice', false, `stale plan hash deadbeefdead (current ${planHash!.slice(0, 12)})`],
      ['alice', false, 'planHash must be at least 12 hex characters'],
      ['rita', false, 'the requester may not approve their own run'],
      ['alice', true, undefined],
      ['alice', false, 'duplicate approval'],
    ]);
    expect(status.approval.waiting).toBe(true);
    expect(status.approval.approvedBy).toEqual(['alice']);
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);
    await handle.signal(approveSignal, { by: 'bob', planHash: planHash! });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect(result.approval.approvedBy).toEqual(['alice', 'bob']);
    await saveHistory(h.client, handle.workflowId, 'quorum-and-ignored-approvals');
  });

  it('a step that fails after the change runs the undos and fails the run with the cause', async () => {
    const t = await h.demoTarget({ health: { expectBody: 'never-in-the-body', within: '1s' } });
    const handle = await h.startRun({ environment: t.envName });
    await approve(handle);
    const { type, result } = await failureOf(handle);
    expect(type).toBe('RunbookFailed');
    expect(result!.outcome).toBe('failed');
    const health = result!.steps.find((s) => s.name === 'verify health')!;
    expect(health.status).toBe('failed');
    expect(health.error).toContain('body lacks "never-in-the-body"');
    expect(result!.compensations.map((c) => [c.step, c.status])).toEqual([['set flags', 'succeeded']]);
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);
    expect((await t.liveFlags())[DUAL]).toBe('true');
    await saveHistory(h.client, handle.workflowId, 'step-fails-undo-runs');
  });

  it('an undo that keeps failing is reported as compensation_failed, not swallowed', async () => {
    const t = await h.demoTarget({ health: { expectBody: 'never-in-the-body', within: '3s' } });
    const handle = await h.startRun({ environment: t.envName });
    await approve(handle);
    await h.waitFor(handle, (s) => s.currentStep === 'verify health');
    // make the flag file unrestorable: a directory where the file was
    rmSync(t.envFile);
    mkdirSync(t.envFile);
    const { type, result } = await failureOf(handle);
    expect(type).toBe('CompensationFailed');
    expect(result!.outcome).toBe('compensation_failed');
    expect(result!.compensations).toHaveLength(1);
    expect(result!.compensations[0]).toMatchObject({ step: 'set flags', status: 'failed' });
    expect(result!.compensations[0]!.error).toMatch(/EISDIR/);
    const doc = evidenceOf(result!);
    expect(doc.compensations[0].status).toBe('failed');
    // the communication does not claim a state it cannot know
    const comm = renderCommunication(doc);
    expect(comm).toContain(`- set flags: undo failed — ${result!.compensations[0]!.error}`);
    expect(comm).toContain(`- ${DUAL}: unknown — true before, false planned; check it (an undo failed)`);
    expect(comm).toContain('- vNext operations: Unknown (an undo failed: check the flags)');
    expect(comm).toContain('1. Check the state the failed undo left (see Undone) and put it right by hand');
  });

  it('a step running past its expected duration escalates; notifications reach the webhook', async () => {
    const hook = await captureWebhook('TEST_WEBHOOK_URL');
    const { received } = hook;
    try {
      const t = await h.demoTarget({
        quietWindow: '2s',
        notifications: { console: { type: 'log' }, slack: { type: 'webhook', urlEnv: 'TEST_WEBHOOK_URL' } },
        escalation: [
          { level: 1, after: '0s', contact: 'on-call' },
          { level: 2, after: '1h', contact: 'lead' },
        ],
      });
      const handle = await h.startRun({ environment: t.envName });
      await approve(handle);
      await h.waitFor(handle, (s) => s.currentStep === 'verify no dual writes');
      // a straggler instance keeps logging dual writes for 4 s after the flip
      const until = Date.now() + 4000;
      while (Date.now() < until) {
        appendFileSync(t.logFile, `${new Date().toISOString()} pid=0 dual_write_scheduled write_id=straggler\n`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const result = (await handle.result()) as RunbookResult;
      expect(result.outcome).toBe('succeeded');
      expect(result.escalation.history.map((e) => [e.level, e.reason, e.delivered])).toEqual([
        [1, 'approval pending', true],
        [1, 'step "verify no dual writes" running past 3000ms', true],
      ]);
      expect(result.steps.find((s) => s.name === 'verify no dual writes')!.result).toMatch(
        /^quiet for \d+s \([1-9]\d* lines before\)$/,
      );
      expect(received).toHaveLength(3);
      expect(received[0]!.text).toMatch(/^\*\[L1\] feature-flag-rollback on .*: approval pending\*/);
      expect(received[1]!.text).toContain('running past 3000ms');
      expect(received[2]!.text).toContain('### Dual-Write Rollback Notification');
      expect(received[2]!.text).toContain('- TEAM_VNEXT_DUAL_WRITE_ENABLED: false');
    } finally {
      hook.close();
    }
  });

  it('dry run: plan and evidence, no change', async () => {
    const t = await h.demoTarget();
    const handle = await h.startRun({ environment: t.envName, dryRun: true, mode: 'block-legacy-writes' });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('dry_run');
    expect(result.plan!.changes).toEqual([
      { item: 'TEAM_VNEXT_LEGACY_WRITE_BLOCKED', from: 'false', to: 'true' },
      { item: DUAL, from: 'true', to: 'false' },
    ]);
    expect(result.steps.find((s) => s.name === 'approval')!.status).toBe('skipped');
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);
    expect((await t.stats()).reloads).toBe(0);
    expect(existsSync(result.evidence!.path)).toBe(true);
    expect(evidenceOf(result).plan.changes).toHaveLength(2);
    await saveHistory(h.client, handle.workflowId, 'dry-run');
  });

  it('invalid input fails fast and non-retryably, naming the field, before touching anything', async () => {
    const t = await h.demoTarget();
    const handle = await h.startRun({ environment: t.envName, mode: 'disable-everything' as never });
    const { type, cause } = await failureOf(handle);
    expect(type).toBe('InvalidInput');
    expect((cause as ApplicationFailure).nonRetryable).toBe(true);
    expect((cause as Error).message).toContain('mode:');
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);
  });

  it('input that loosens the environment policy fails as InvalidInput naming the field, changing nothing', async () => {
    const t = await h.demoTarget({ approval: { approvers: ['alice', 'bob'], quorum: 2, timeout: '1h' } });
    for (const [approval, message] of [
      [{ timeout: '2h' }, "approval.timeout: 2h is longer than the environment's 1h"],
      [{ quorum: 1 }, "approval.quorum: 1 is below the environment's 2"],
    ] as const) {
      const handle = await h.startRun({ environment: t.envName, approval });
      const { type, result, cause } = await failureOf(handle);
      expect(type).toBe('InvalidInput');
      expect((cause as ApplicationFailure).nonRetryable).toBe(true);
      expect(result!.error).toContain(message);
      expect(result!.steps.find((s) => s.name === 'set flags')!.status).toBe('skipped');
    }
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);
    expect((await t.stats()).reloads).toBe(0);
  });

  it('an unknown target is a non-retryable EnvironmentInvalid failure naming the file', async () => {
    const t = await h.demoTarget();
    const handle = await h.startRun({ environment: t.envName, target: 'api' });
    const { type, result } = await failureOf(handle);
    expect(type).toBe('RunbookFailed');
    expect(result!.steps[0]!.error).toContain(`${t.envName}.yaml: targets.api: unknown target (known: web)`);
  });

  it('status query shows the workflow id, target and current step while it runs', async () => {
    const t = await h.demoTarget();
    const handle = await h.startRun({ environment: t.envName });
    const status = await h.waitForApproval(handle);
    expect(status).toMatchObject({
      runbook: 'feature-flag-rollback',
      environment: t.envName,
      target: 'web',
      currentStep: 'approval',
      phase: 'approval',
    });
    await handle.cancel();
    const err = await handle.result().catch((e: unknown) => e);
    expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    const after = await handle.query(statusQuery);
    expect(after.outcome).toBe('cancelled');
  });
});
