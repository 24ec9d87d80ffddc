/** Bench-only workflows (their own workflowsPath): the same no-op steps with and without the Runbook engine. */
import { proxyActivities } from '@temporalio/workflow';
import type { RunbookResult } from '../../src/shared/types.js';
import { Runbook } from '../../src/workflows/engine/runbook.js';
import type { BenchActivities } from './activities.js';
import { HEARTBEAT_TIMEOUT, NOOP_START_TO_CLOSE_TIMEOUT, SLEEP_RETRY } from './settings.js';

// every runbook run takes its target's lock: the lock workflow (signal-with-start) runs on the run's task queue
export { targetLock } from '../../src/workflows/target-lock.js';

const { noop } = proxyActivities<BenchActivities>({ startToCloseTimeout: NOOP_START_TO_CLOSE_TIMEOUT });
const { sleepHeartbeating } = proxyActivities<BenchActivities>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  retry: SLEEP_RETRY,
});

function runbook(name: string, steps: string[]): Runbook<string> {
  return new Runbook({
    runbook: name,
    environment: 'bench',
    target: 'noop',
    requester: 'bench',
    reason: 'npm run bench',
    dryRun: false,
    steps,
  });
}

/** `steps` no-op activities, each one an engine step; ends like every runbook (evidence, Outcome attribute). */
export async function benchEngineSteps(steps: number): Promise<RunbookResult> {
  const names = Array.from({ length: steps }, (_, i) => `step ${i + 1}`);
  const rb = runbook('bench-engine', names);
  return rb.run(async () => {
    for (const name of names) await rb.step(name, () => noop());
  });
}

/** The baseline: the same activity calls made directly, no engine. */
export async function benchDirectSteps(steps: number): Promise<number> {
  for (let i = 0; i < steps; i++) await noop();
  return steps;
}

/** A (no-op) → B (sleeps, heartbeating; the worker is killed during it) → C (no-op). */
export async function benchResume(input: { sleepMs: number; heartbeatEveryMs: number }): Promise<RunbookResult> {
  const rb = runbook('bench-resume', ['A', 'B', 'C']);
  return rb.run(async () => {
    await rb.step('A', () => noop());
    await rb.step('B', () => sleepHeartbeating({ totalMs: input.sleepMs, everyMs: input.heartbeatEveryMs }), {
      summarize: (r: { attempt: number; pid: number; resumedFromMs: number }) =>
        `attempt ${r.attempt} on pid ${r.pid}, resumed from ${r.resumedFromMs} ms`,
    });
    await rb.step('C', () => noop());
  });
}
