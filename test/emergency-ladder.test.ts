import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { EXIT_CODES } from '../src/shared/constants.js';
import { abortSignal } from '../src/shared/messages.js';
import type { RunbookResult } from '../src/shared/types.js';
import { runbook, temporal } from './support/cli.js';
import { Harness } from './support/harness.js';
import { saveHistory } from './support/histories.js';
import {
  emergency,
  evidenceOf,
  faults,
  ladderOf,
  saveGoodThenBreak,
  startLadder,
  stepStatus,
  unhealthy,
  withBackend,
} from './support/ladder.js';
import { jobTarget } from './support/migration.js';
import { captureWebhook } from './support/webhook.js';

// The emergency ladder's levels and its hand-over; the per-level approvals are in emergency-ladder-approvals.test.ts.

const h = new Harness();
beforeAll(() => h.start());
afterAll(() => h.close());

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
    const good = await saveGoodThenBreak(h, t, broken);
    await unhealthy(t);

    const handle = await startLadder(h, t);
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
      await saveGoodThenBreak(h, t, withBackend(t, { primary: 'parquet' }));
      await unhealthy(t);

      const handle = await startLadder(h, t);
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

  it('an abort during level 3 undoes level 3, then level 2: the configuration as found, byte for byte', async () => {
    const t = await jobTarget(h, { migration: emergency() });
    faults(t, { heavydb: { mode: 'fail' }, parquet: { mode: 'fail' } });
    // the last known good differs from the emergency configuration, so each level writes something
    t.writeIni(withBackend(t, { dual_write: 'true', phase: 'dual-write' }));
    await saveGoodThenBreak(h, t, withBackend(t, { primary: 'parquet' }));
    const found = t.iniBytes();
    await unhealthy(t);

    const handle = await startLadder(h, t);
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

  it('dry run: seals the ladder plan and ends; nothing restarts, nothing is written', async () => {
    const t = await jobTarget(h, { migration: emergency() });
    const pid = (await t.stats()).pid;
    const before = t.iniBytes();
    // started as an operator would with the temporal CLI (the README's command)
    const id = `ladder-dry-${h.taskQueue}`;
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
      const handle = await startLadder(h, t, input as never);
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
