/**
 * Section 2: resume after SIGKILL. A (no-op) → B (sleeps, heartbeating) → C (no-op) on a worker child process
 * (worker-child.ts) that is SIGKILLed during B; a new one is spawned, and the bench measures from its spawn.
 */
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { ATTEMPT_MARKER } from '../../src/shared/constants.js';
import { targetLockId } from '../../src/shared/messages.js';
import { sigkill, startChildWorker } from '../../test/support/child-worker.js';
import { waitForClosed } from '../../test/support/wait.js';
import { SMOKE } from '../support/env.js';
import { historyOf, tsMs } from '../support/history.js';
import { stopChild } from '../support/resources.js';
import type { SleepResult } from './activities.js';
import { ms, withTimeout } from './format.js';
import {
  HEARTBEAT_EVERY_MS,
  HEARTBEAT_TIMEOUT_MS,
  KILL_AFTER_PROGRESS_MS,
  RESUME_RUNS,
  RESUME_TARGET_EXTRA_MS,
  SLEEP_MS,
} from './settings.js';
import { BENCH_ENVIRONMENT, BENCH_TARGET, isReadyLine, type ReadyMessage } from './worker.js';
import type { EngineWorld } from './world.js';

/** runs: settings.ts's, or one for BENCH_SMOKE=1 */
export const RESUME_COUNT = SMOKE ? 1 : RESUME_RUNS;

export interface ResumeRun {
  run: number;
  /** new worker: spawn → polling, and its parts (process start → module loaded → connected → worker created) */
  startupMs: number;
  loadedMs: number;
  connectMs: number;
  createMs: number;
  /** kill → last heartbeat the server had recorded (how much of the heartbeat timeout was still to run) */
  sinceHeartbeatAtKillMs: number;
  /** spawn of the new worker → the interrupted step B running again on it */
  resumedMs: number;
  /** spawn → step B's ActivityTaskCompleted (includes B's remaining work) */
  bCompletedMs: number;
  /** spawn → step C's ActivityTaskCompleted */
  cCompletedMs: number;
  remainingWorkMs: number;
  attempt: number;
  stickyTimeouts: number;
  withinTarget: boolean;
}

async function waitForHeartbeat(handle: WorkflowHandle): Promise<{ lastHeartbeatAt: number }> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const { raw } = await handle.describe();
    const pending = raw.pendingActivities?.find((a) => a.activityType?.name === 'sleepHeartbeating');
    if (pending?.lastHeartbeatTime && pending.lastStartedTime) {
      const lastHeartbeatAt = tsMs(pending.lastHeartbeatTime);
      if (lastHeartbeatAt - tsMs(pending.lastStartedTime) >= KILL_AFTER_PROGRESS_MS) return { lastHeartbeatAt };
    }
    if (Date.now() > deadline) throw new Error('step B never heartbeated');
    await delay(25);
  }
}

async function resumeRun(world: EngineWorld, run: number): Promise<ResumeRun> {
  const taskQueue = `bench-resume-${Date.now()}-${run}`;
  const spawnWorker = () =>
    startChildWorker(
      world.child,
      world.resources.children,
      0,
      { TEMPORAL_TASK_QUEUE: taskQueue },
      { entry: 'bench/engine/worker-child.ts', isReady: isReadyLine, logFile: join(world.root, 'worker.log') },
    );
  const first = await spawnWorker();
  const handle = await world.client.workflow.start('benchResume', {
    taskQueue,
    workflowId: `bench-resume-${taskQueue}`,
    args: [{ sleepMs: SLEEP_MS, heartbeatEveryMs: HEARTBEAT_EVERY_MS }],
  });
  const { lastHeartbeatAt } = await waitForHeartbeat(handle);
  const killedAt = Date.now();
  await sigkill(first.child);

  const second = await spawnWorker();
  try {
    const ready = JSON.parse(second.readyLine) as ReadyMessage;
    await withTimeout('resumed workflow', 60_000, handle.result());
    const h = await historyOf(handle);
    const b = h.activities.find((a) => a.type === 'sleepHeartbeating');
    const noops = h.activities.filter((a) => a.type === 'noop');
    const c = noops[1];
    if (!b?.result || !c) throw new Error('resume workflow: steps B and C did not both complete');
    // the worker's attempt interceptor wraps activity results as { [ATTEMPT_MARKER]: attempt, value }
    const raw = defaultPayloadConverter.fromPayload<SleepResult | { [ATTEMPT_MARKER]: number; value: SleepResult }>(
      b.result,
    );
    const result = ATTEMPT_MARKER in raw ? raw.value : raw;
    if (result.pid !== second.child.pid)
      throw new Error(`step B finished on pid ${result.pid}, not on the new worker (${second.child.pid})`);
    const stickyTimeouts = h.events.filter(
      (e) => e.workflowTaskTimedOutEventAttributes && tsMs(e.eventTime) >= killedAt,
    ).length;
    const resumedMs = result.attemptStartedAt - second.spawnedAt;
    // the target's lock workflow runs on this task queue too: it ends once the run has released the target
    await waitForClosed(world.client, targetLockId(BENCH_ENVIRONMENT, BENCH_TARGET));
    return {
      run,
      startupMs: second.readyAt - second.spawnedAt,
      loadedMs: ready.loadedMs,
      connectMs: ready.connectedMs - ready.loadedMs,
      createMs: ready.createdMs - ready.connectedMs,
      sinceHeartbeatAtKillMs: killedAt - lastHeartbeatAt,
      resumedMs,
      bCompletedMs: b.at - second.spawnedAt,
      cCompletedMs: c.at - second.spawnedAt,
      remainingWorkMs: b.at - result.attemptStartedAt,
      attempt: result.attempt,
      stickyTimeouts,
      withinTarget: resumedMs <= RESUME_TARGET_EXTRA_MS + HEARTBEAT_TIMEOUT_MS,
    };
  } finally {
    await stopChild(second.child);
  }
}

export async function benchResume(world: EngineWorld): Promise<ResumeRun[]> {
  const runs: ResumeRun[] = [];
  for (let run = 1; run <= RESUME_COUNT; run++) {
    const r = await resumeRun(world, run);
    world.log(
      `resume run ${run}: startup ${ms(r.startupMs, 0)}, B resumed ${ms(r.resumedMs, 0)}, B done ${ms(r.bCompletedMs, 0)}, C done ${ms(r.cCompletedMs, 0)}`,
    );
    runs.push(r);
  }
  return runs;
}
