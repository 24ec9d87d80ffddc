/**
 * Resume cost: the 1 % repair of a third copy of the PG ↔ object store pair by the real workflow on a worker child
 * process (src/worker/main.ts, test/support/child-worker.ts), SIGKILLed KILL_AT_FRACTION into the execute step (by
 * the uninterrupted run's execute time); after the kill, the differences left are counted; then a new worker
 * process is spawned and the run completes on it. The retried execute attempt resumes from the last batch its
 * heartbeats reported.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { DRIFT_CLASSES } from '../../src/activities/stores/diff.js';
import { sigkill, startChildWorker } from '../../test/support/child-worker.js';
import { differences } from '../../test/support/dual-write.js';
import { historyOf, tsMs } from '../support/history.js';
import { fmtMs } from './format.js';
import { approveAndWait, approveWhenWaiting, startRepair, workflowPhases, writeCaseEnvironment } from './repair.js';
import type { RepairResult } from './repair.js';
import type { CaseStores, Level } from './seed.js';
import { DW_REPAIR_BATCH, DW_WORKFLOW_BUDGET_MS, KILL_AT_FRACTION } from './settings.js';
import { withSides } from './sides.js';
import { ensureBundle, type DualWriteWorld } from './world.js';

export interface KillResult {
  ok: boolean;
  error?: string;
  /** the uninterrupted workflow run of the same pair (the in-process worker): its execute step and its work (without the approval wait) */
  reference?: { executeMs: number; workMs: number };
  /** execute activity started → SIGKILL */
  killAfterMs: number;
  /** what the server had recorded at the kill: the last heartbeat's nextBatch and how long before the kill it came */
  heartbeat?: { nextBatch: number | null; agoMs: number };
  /** objects already repaired when the worker died (actions − differences left, by a diffStores pass after the kill) */
  appliedAtKill: number;
  /** the retried execute attempt: the batch it resumed at, what it applied */
  resumedAt: number;
  appliedByRetry: number;
  /** repaired objects the retry applied again (appliedAtKill − resumedAt × batch size) */
  redone: number;
  /** times from the new worker process's spawn */
  startupMs: number;
  retryStartedMs: number;
  executeDoneMs: number;
  completedMs: number;
  /** the whole killed run without the approval wait (from the workflow's start; includes the check after the kill and the new worker's startup) */
  workMs: number;
  /** kill → the retried execute attempt started on the new worker */
  killToRetryMs: number;
  executeAttempts: number;
  phases: Array<{ name: string; ms: number; note?: string }>;
}

const executeOf = (d: Awaited<ReturnType<WorkflowHandle['describe']>>) =>
  d.raw.pendingActivities?.find((p) => p.activityType?.name === 'executeRepair');

/** Waits for the execute activity to be running; returns when it started (server time). */
async function executeStarted(handle: WorkflowHandle, deadline: number): Promise<number> {
  for (;;) {
    const d = await handle.describe();
    const started = executeOf(d)?.lastStartedTime;
    if (started) return tsMs(started);
    if (d.status.name !== 'RUNNING')
      throw new Error(`the workflow ended (${d.status.name}) before its execute step ran`);
    if (Date.now() > deadline) {
      await handle.terminate('benchmark budget exceeded').catch(() => undefined);
      throw new Error('the execute step did not start within the budget');
    }
    await delay(25);
  }
}

/** When the execute activity's retry (attempt ≥ 2, after the kill) started, once it has. */
function watchRetry(handle: WorkflowHandle, killedAt: number): { done: Promise<void>; startedAt: () => number } {
  let startedAt = NaN;
  const done = (async () => {
    while (!Number.isFinite(startedAt)) {
      const d = await handle.describe().catch(() => undefined);
      if (!d || d.status.name !== 'RUNNING') return;
      const p = executeOf(d);
      if (p && (p.attempt ?? 1) >= 2 && p.lastStartedTime && tsMs(p.lastStartedTime) > killedAt)
        startedAt = tsMs(p.lastStartedTime);
      await delay(50);
    }
  })();
  return { done, startedAt: () => startedAt };
}

async function repairWithKill(
  world: DualWriteWorld,
  c: CaseStores,
  reference: RepairResult | undefined,
  actions: number,
): Promise<KillResult> {
  await ensureBundle(world);
  // the worker children have a task queue of their own: the in-process worker must not take this run
  const taskQueue = `${world.h.taskQueue}-kill`;
  const spawnWorker = () =>
    startChildWorker(
      world.h,
      world.resources.children,
      0,
      { TEMPORAL_TASK_QUEUE: taskQueue },
      {
        logFile: join(world.root, 'repair-worker.log'),
      },
    );
  const refExecute = reference?.phases.find((p) => p.name.startsWith('execute'))?.ms;
  const killAfterMs = Math.max(500, KILL_AT_FRACTION * (refExecute && Number.isFinite(refExecute) ? refExecute : 4000));
  const first = await spawnWorker();
  const started = Date.now();
  const handle = await startRepair(world, c, taskQueue);
  await approveWhenWaiting(handle, started);
  const executeStartedAt = await executeStarted(handle, started + DW_WORKFLOW_BUDGET_MS);
  await delay(Math.max(0, executeStartedAt + killAfterMs - Date.now()));
  const pending = executeOf(await handle.describe());
  const killedAt = Date.now();
  await sigkill(first.child);
  const details = pending?.heartbeatDetails?.payloads?.[0];
  const heartbeat = pending?.lastHeartbeatTime
    ? {
        nextBatch: details
          ? (defaultPayloadConverter.fromPayload<{ nextBatch?: number }>(details).nextBatch ?? null)
          : null,
        agoMs: killedAt - tsMs(pending.lastHeartbeatTime),
      }
    : undefined;
  world.log(
    `killed the repair worker ${fmtMs(killedAt - executeStartedAt)} into execute (last heartbeat: ${heartbeat ? `nextBatch ${heartbeat.nextBatch}, ${fmtMs(heartbeat.agoMs)} before` : 'none'})`,
  );
  // nothing runs the repair now (the new worker is not spawned yet; the activity waits for its heartbeat timeout);
  // the differences left, counted as verifyRepair does (diffStores defaults)
  const appliedAtKill = actions - (await withSides(world.pgUrl, c, (a, b) => differences({ a, b }, {}), 4));
  const second = await spawnWorker();
  const retry = watchRetry(handle, killedAt);
  try {
    const result = await approveAndWait(handle, started);
    await retry.done;
    const retryStartedAt = retry.startedAt();
    const { phases, approvalMs } = workflowPhases(result);
    const history = await historyOf(handle);
    const executeDone = history.activities.find((a) => a.type === 'executeRepair');
    const evidence = result.evidence
      ? (JSON.parse(readFileSync(result.evidence.path, 'utf8')) as {
          extra?: { execution?: { applied?: number; appliedNow?: number; resumedAt?: number } };
        })
      : undefined;
    const execution = evidence?.extra?.execution ?? {};
    const resumedAt = execution.resumedAt ?? 0;
    const executeStep = result.steps.find((s) => s.name === 'execute');
    return {
      ok: result.outcome === 'succeeded',
      error: result.error,
      // only a workflow run is comparable as a whole
      reference:
        reference?.mode === 'workflow' && refExecute !== undefined
          ? { executeMs: refExecute, workMs: reference.workMs }
          : undefined,
      killAfterMs: killedAt - executeStartedAt,
      heartbeat,
      appliedAtKill,
      resumedAt,
      appliedByRetry: execution.appliedNow ?? NaN,
      redone: Math.max(0, appliedAtKill - resumedAt * DW_REPAIR_BATCH),
      startupMs: second.readyAt - second.spawnedAt,
      retryStartedMs: retryStartedAt - second.spawnedAt,
      executeDoneMs: (executeDone?.at ?? NaN) - second.spawnedAt,
      completedMs: history.completedAt - second.spawnedAt,
      workMs: Date.now() - started - approvalMs,
      killToRetryMs: retryStartedAt - killedAt,
      executeAttempts: executeStep?.attempts ?? NaN,
      phases,
    };
  } finally {
    await sigkill(second.child);
  }
}

/** The kill run of the level (its third PG ↔ object store copy), after the uninterrupted repairs; a failure is reported, not thrown. */
export async function killLevel(world: DualWriteWorld, lv: Level, repairs: RepairResult[]): Promise<KillResult> {
  const c = lv.killCase!;
  writeCaseEnvironment(world, c);
  // the uninterrupted repair of the same pair (by the workflow, or by the activities): the kill comes into its execute time
  const reference = repairs.find((r) => r.pair.id === c.pair.id && r.ok);
  world.log(`${c.pair.label}: repair with the worker SIGKILLed during execute`);
  try {
    const kill = await repairWithKill(world, c, reference, lv.perClass * DRIFT_CLASSES.length);
    world.log(
      `kill run ${kill.ok ? 'succeeded' : 'FAILED'}: resumed at batch ${kill.resumedAt}, ${kill.appliedAtKill} applied at the kill, ${kill.redone} redone; new worker → retry ${fmtMs(kill.retryStartedMs)}, → done ${fmtMs(kill.completedMs)}`,
    );
    return kill;
  } catch (error) {
    world.log(`kill run failed: ${(error as Error).message}`);
    return { error: (error as Error).message } as KillResult;
  }
}
