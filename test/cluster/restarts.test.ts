/**
 * On the cluster (vitest project `cluster`): a part of the Temporal server, or its database, goes away in the middle
 * of a feature-flag rollback run by a worker process, and comes back. The run completes, and each of its side effects
 * (the flag change, the service reload) happened exactly once.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import type { ServiceName } from '../../src/dev/cluster.js';
import { approveSignal } from '../../src/shared/messages.js';
import type { RunbookResult } from '../../src/shared/types.js';
import { Harness } from '../support/harness.js';
import { sigkill, startChildWorker } from '../support/child-worker.js';
import { clusterControl } from '../support/cluster-control.js';

const h = new Harness();
const cluster = clusterControl();
const children: ChildProcess[] = [];
beforeAll(() => h.start({ worker: false }));
afterEach(async () => {
  for (const c of children.splice(0)) await sigkill(c);
});
afterAll(() => h.close());

/** When the disruption happens: right after the approval (every side effect after it), or while a step runs. */
type When = 'approved' | 'step running';

/**
 * A feature-flag rollback on a demo target of its own, run by a worker process; `disrupt` runs at `when`. Returns the
 * result and the activities the history scheduled, after checking the side effects at the target.
 */
async function disruptedRun(when: When, disrupt: () => Promise<void>): Promise<RunbookResult> {
  // a quiet window longer than a service restart: the step is still running when the service is back
  const t = await h.demoTarget({ quietWindow: '8s' });
  await startChildWorker(h, children);
  const handle: WorkflowHandle = await h.startRun({ environment: t.envName });
  const { planHash } = await h.waitForApproval(handle);
  await handle.signal(approveSignal, { by: 'alice', planHash: planHash! });
  if (when === 'step running') await h.waitFor(handle, (s) => s.currentStep === 'verify no dual writes');
  await disrupt();
  const result = (await handle.result()) as RunbookResult;
  expect(result.outcome).toBe('succeeded');
  // at the target: one flag change, one reload, the flag file as the rollback leaves it
  const stats = await t.stats();
  expect(stats.flagChanges).toBe(1);
  expect(stats.reloads).toBe(1);
  expect(readFileSync(t.envFile, 'utf8')).toBe(
    t.initialFlags.replace('TEAM_VNEXT_DUAL_WRITE_ENABLED=true', 'TEAM_VNEXT_DUAL_WRITE_ENABLED=false'),
  );
  // in the history: each side-effecting activity scheduled once
  const scheduled = (await handle.fetchHistory())
    .events!.filter((e) => e.activityTaskScheduledEventAttributes)
    .map((e) => e.activityTaskScheduledEventAttributes!.activityType!.name);
  expect(scheduled.filter((n) => n === 'writeFlags')).toHaveLength(1);
  expect(scheduled.filter((n) => n === 'reloadService')).toHaveLength(1);
  return result;
}

/** Runs `fn` and checks that the service's process is a new one afterwards. */
async function replaced(name: ServiceName, fn: () => Promise<void>): Promise<void> {
  const before = (await cluster.pids())[name];
  await fn();
  const after = (await cluster.pids())[name];
  expect(before).toBeTypeOf('number');
  expect(after).toBeTypeOf('number');
  expect(after).not.toBe(before);
}

describe('Temporal cluster: a service or the database restarted mid-run', () => {
  it('history SIGKILLed while a step runs, then started: the run completes, each side effect once', async () => {
    const result = await disruptedRun('step running', () =>
      replaced('history', async () => {
        await cluster.killService('history');
        await cluster.startService('history');
      }),
    );
    expect(result.steps.find((s) => s.name === 'reload service')!.attempts).toBe(1);
  });

  it('history restarted (SIGTERM) right after the approval: every step after it runs once', async () => {
    const result = await disruptedRun('approved', () => replaced('history', () => cluster.restartService('history')));
    for (const step of ['set flags', 'reload service'])
      expect(result.steps.find((s) => s.name === step)!.attempts).toBe(1);
  });

  it('matching restarted right after the approval: the tasks reach the worker, each side effect once', async () => {
    await disruptedRun('approved', () => replaced('matching', () => cluster.restartService('matching')));
  });

  it("Temporal's PostgreSQL restarted while a step runs: the run completes, each side effect once", async () => {
    await disruptedRun('step running', () => cluster.postgres.restart());
  });
});
