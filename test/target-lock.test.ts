import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../src/shared/constants.js';
import {
  approveSignal,
  lockAcquireUpdate,
  lockReleaseSignal,
  lockStatusQuery,
  rejectSignal,
  targetLockId,
} from '../src/shared/messages.js';
import type { RunbookResult } from '../src/shared/types.js';
import { runbook, temporal, temporalStart, startFlagRollback } from './support/cli.js';
import { Harness } from './support/harness.js';
import { saveHistory } from './support/histories.js';

const h = new Harness();
beforeAll(() => h.start());
afterAll(() => h.close());

/** A run started with `temporal workflow start`, as an operator types it (no search attributes, no busy check). */
async function startByHand(id: string, environment: string, mode = 'disable-dual-write'): Promise<void> {
  const input = { environment, target: 'web', mode, requester: 'rita', reason: 'by hand' };
  const started = await temporalStart(h, 'featureFlagRollback', id, input);
  expect(started.code, started.stderr).toBe(0);
}

describe('one runbook per target, however it was started', () => {
  it('two runs started with `temporal workflow start` on one target run one after the other', async () => {
    const t = await h.demoTarget({ quietWindow: '1s' });
    await startByHand(`first-${t.envName}`, t.envName);
    const first = h.client.workflow.getHandle(`first-${t.envName}`);
    const firstWaiting = await h.waitForApproval(first);
    expect(firstWaiting.locks).toMatchObject([{ environment: t.envName, target: 'web', state: 'held' }]);

    await startByHand(`second-${t.envName}`, t.envName, 'disable-strict-mode');
    const second = h.client.workflow.getHandle(`second-${t.envName}`);
    const queued = await h.waitFor(second, (s) => Boolean(s.locks?.[0]?.holder));
    expect(queued.currentStep).toBe('lock target');
    expect(queued.locks![0]).toMatchObject({
      state: 'waiting',
      holder: { workflowId: `first-${t.envName}`, runbook: 'feature-flag-rollback', runId: firstWaiting.runId },
    });
    expect(queued.steps.find((s) => s.name === 'read current flags')!.status).toBe('pending');
    // the CLI names the holder too
    const busy = await runbook(startFlagRollback(t.envName, '{"mode":"disable-dual-write"}'), h.env());
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain(`is busy: workflow "first-${t.envName}" (feature-flag-rollback) holds it`);

    await first.signal(approveSignal, { by: 'alice', planHash: firstWaiting.planHash! });
    const firstResult = (await first.result()) as RunbookResult;
    expect(firstResult.outcome).toBe('succeeded');
    expect(firstResult.locks).toMatchObject([{ state: 'released' }]);
    // only now does the second run read the flags: its plan starts from what the first one left
    const secondWaiting = await h.waitForApproval(second);
    expect(secondWaiting.locks![0]!.state).toBe('held');
    expect(Date.parse(secondWaiting.locks![0]!.grantedAt!)).toBeGreaterThanOrEqual(Date.parse(firstResult.endedAt!));
    expect(secondWaiting.plan!.details!.current).toMatchObject({ TEAM_VNEXT_DUAL_WRITE_ENABLED: 'false' });
    await second.signal(rejectSignal, { by: 'bob', comment: 'enough for today' });
    expect(((await second.result()) as RunbookResult).outcome).toBe('rejected');
    // nobody holds or waits: the lock workflow has ended
    const lock = h.client.workflow.getHandle(targetLockId(t.envName, 'web'));
    await h.waitForClosed(lock.workflowId);
    await saveHistory(h.client, second.workflowId, 'waited-for-the-target');
    await saveHistory(h.client, lock.workflowId, 'two-runs-in-turn', 'target-lock');
  });

  it('a run that waits longer than lockWait ends target_busy, naming the holder, having changed nothing', async () => {
    const t = await h.demoTarget({ sections: { lockWait: '3s' } });
    await startByHand(`holder-${t.envName}`, t.envName);
    const holder = h.client.workflow.getHandle(`holder-${t.envName}`);
    const held = await h.waitForApproval(holder);
    const waiter = `waiter-${t.envName}`;
    await startByHand(waiter, t.envName, 'block-legacy-writes');
    const watched = await runbook(['watch', waiter], h.env());
    expect(watched.code).toBe(EXIT_CODES.target_busy);
    const result = (await h.client.workflow.getHandle(waiter).result()) as RunbookResult;
    expect(result.outcome).toBe('target_busy');
    // "since": when the lock granted it (the lock workflow's clock)
    expect(result.error).toMatch(
      new RegExp(
        `^${t.envName}/web is held by run holder-${t.envName} \\(feature-flag-rollback, run id ${held.runId}, since \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\); waited 3s$`,
      ),
    );
    expect(result.steps.filter((s) => s.status !== 'skipped').map((s) => [s.name, s.status])).toEqual([
      ['lock target', 'failed'],
    ]);
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);
    await saveHistory(h.client, waiter, 'target-busy');
    // the waiter withdrew: the holder still holds, nobody queues behind it
    const lockHandle = h.client.workflow.getHandle(targetLockId(t.envName, 'web'));
    await expect.poll(async () => (await lockHandle.query(lockStatusQuery)).queue, { timeout: 10_000 }).toEqual([]);
    expect((await lockHandle.query(lockStatusQuery)).holder?.workflowId).toBe(`holder-${t.envName}`);
    await holder.cancel();
  });

  it('a holder that was terminated (no undo, no release) does not keep the target', async () => {
    const t = await h.demoTarget();
    await startByHand(`terminated-${t.envName}`, t.envName);
    await h.waitForApproval(h.client.workflow.getHandle(`terminated-${t.envName}`));
    const terminated = await temporal(['workflow', 'terminate', '--workflow-id', `terminated-${t.envName}`], h.address);
    expect(terminated.code, terminated.stderr).toBe(0);
    const next = await h.startRun({ environment: t.envName });
    const waiting = await h.waitForApproval(next);
    expect(waiting.locks![0]!.state).toBe('held');
    await next.cancel();
  });

  it('a child of the holding run shares its hold; a request naming another parent waits its turn', async () => {
    const t = await h.demoTarget();
    await startByHand(`parent-${t.envName}`, t.envName);
    const parent = h.client.workflow.getHandle(`parent-${t.envName}`);
    const holding = await h.waitForApproval(parent);
    const lock = h.client.workflow.getHandle(targetLockId(t.envName, 'web'));
    const ask = (workflowId: string, parentRun: { workflowId: string; runId: string }) =>
      lock.executeUpdate(lockAcquireUpdate, {
        args: [
          {
            workflowId,
            runId: `${workflowId}-run`,
            runbook: 'job-replay',
            requestedAt: new Date().toISOString(),
            parent: parentRun,
          },
        ],
      });
    const child = await ask('child', { workflowId: parent.workflowId, runId: holding.runId });
    expect(child).toMatchObject({ granted: true, shared: true, holder: { workflowId: parent.workflowId } });
    const stranger = await ask('stranger', { workflowId: parent.workflowId, runId: 'another-run' });
    expect(stranger).toMatchObject({ granted: false, position: 1, holder: { workflowId: parent.workflowId } });
    // the child's release leaves the parent's hold alone; the stranger withdraws
    await lock.signal(lockReleaseSignal, { workflowId: 'child', runId: 'child-run' });
    await lock.signal(lockReleaseSignal, { workflowId: 'stranger', runId: 'stranger-run' });
    const state = await lock.query(lockStatusQuery);
    expect(state.holder).toMatchObject({ workflowId: parent.workflowId, runId: holding.runId });
    expect(state.queue).toEqual([]);
    await parent.signal(rejectSignal, { by: 'bob' });
    expect(((await parent.result()) as RunbookResult).outcome).toBe('rejected');
    await h.waitForClosed(lock.workflowId);
  });
});
