/** Section 1: the engine's overhead per step, against the same activity calls made directly (workflows.ts). */
import type { Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { targetLockId } from '../../src/shared/messages.js';
import { waitForClosed } from '../../test/support/wait.js';
import { SMOKE } from '../support/env.js';
import { historyOf } from '../support/history.js';
import { ms, withTimeout } from './format.js';
import { OVERHEAD_RUNS, OVERHEAD_STEPS, OVERHEAD_WARMUP_RUNS } from './settings.js';
import { BENCH_ENVIRONMENT, BENCH_TARGET, createBenchWorker } from './worker.js';
import type { EngineWorld } from './world.js';

/** runs per variant: settings.ts's, or one warm-up and two for BENCH_SMOKE=1 */
export const OVERHEAD_COUNTS = SMOKE ? { warmup: 1, runs: 2 } : { warmup: OVERHEAD_WARMUP_RUNS, runs: OVERHEAD_RUNS };

export interface OverheadRun {
  variant: 'engine' | 'direct';
  totalMs: number;
  /** workflow start → the last no-op step's completion */
  stepsMs: number;
  perStepMs: number;
  /** per step: time tasks waited on the server between Scheduled and Started (dispatch) */
  dispatchPerStepMs: number;
  /** workflow start → the first no-op step's completion (the engine's start: its lock, then the first step) */
  firstStepMs: number;
  /** first → last no-op completion / (steps − 1): what one more step costs, without per-run costs */
  betweenStepsMs: number;
}

async function overheadRun(
  client: Client,
  taskQueue: string,
  variant: OverheadRun['variant'],
  id: string,
): Promise<OverheadRun> {
  const handle = await client.workflow.start(variant === 'engine' ? 'benchEngineSteps' : 'benchDirectSteps', {
    taskQueue,
    workflowId: `bench-${variant}-${id}`,
    args: [OVERHEAD_STEPS],
  });
  await withTimeout(`${variant} workflow`, 60_000, handle.result());
  const h = await historyOf(handle);
  const noops = h.activities.filter((a) => a.type === 'noop');
  if (noops.length !== OVERHEAD_STEPS)
    throw new Error(`${variant} workflow ran ${noops.length} no-op steps, expected ${OVERHEAD_STEPS}`);
  const totalMs = h.completedAt - h.startedAt;
  return {
    variant,
    totalMs,
    stepsMs: noops[noops.length - 1]!.at - h.startedAt,
    perStepMs: totalMs / OVERHEAD_STEPS,
    dispatchPerStepMs: h.dispatchMs / OVERHEAD_STEPS,
    firstStepMs: noops[0]!.at - h.startedAt,
    betweenStepsMs: (noops[noops.length - 1]!.at - noops[0]!.at) / (OVERHEAD_STEPS - 1),
  };
}

/** Warm-up and measured runs of both variants, alternating which goes first, on one in-process worker. */
export async function benchOverhead(world: EngineWorld): Promise<OverheadRun[]> {
  const connection = await NativeConnection.connect({ address: world.address });
  world.resources.add(() => connection.close());
  const taskQueue = `bench-overhead-${Date.now()}`;
  const worker = await createBenchWorker({ ...world, connection, taskQueue });
  const running = worker.run();
  const stopWorker = world.resources.add(async () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running;
  });
  const runs: OverheadRun[] = [];
  try {
    for (let i = 0; i < OVERHEAD_COUNTS.warmup + OVERHEAD_COUNTS.runs; i++) {
      // alternate which variant goes first, so neither always runs on a warmer system
      const order: Array<OverheadRun['variant']> = i % 2 === 0 ? ['engine', 'direct'] : ['direct', 'engine'];
      for (const variant of order) {
        const run = await overheadRun(world.client, taskQueue, variant, `${taskQueue}-${i}`);
        const warmup = i < OVERHEAD_COUNTS.warmup;
        world.log(
          `overhead ${warmup ? 'warm-up' : `run ${i - OVERHEAD_COUNTS.warmup + 1}`} ${variant}: ${ms(run.totalMs)} total, ${ms(run.perStepMs)} per step (${ms(run.dispatchPerStepMs)} dispatch)`,
        );
        if (!warmup) runs.push(run);
      }
    }
    // the target's lock workflow runs on this task queue: it ends once the last run has released the target
    await waitForClosed(world.client, targetLockId(BENCH_ENVIRONMENT, BENCH_TARGET));
  } finally {
    await stopWorker();
  }
  return runs;
}
