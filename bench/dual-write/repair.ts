/**
 * The repair of the 1 % cases (policy postgres-authoritative). By default (DW_BENCH_REPAIR=auto) the real
 * dualWriteRollback workflow on the harness's in-process worker, approved as soon as it waits — when the default
 * detection, which the workflow runs twice (detect, verify), finished well within the workflow budget; otherwise
 * the repair activities themselves (repair-activities.ts).
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import { approveSignal } from '../../src/shared/messages.js';
import type { RunbookResult } from '../../src/shared/types.js';
import { startDualWrite } from '../../test/support/dual-write.js';
import { writePairEnvironment } from '../../test/support/environments.js';
import { waitForStatus } from '../../test/support/wait.js';
import type { CaseResult } from './detect.js';
import { fmtMs } from './format.js';
import { repairByActivities } from './repair-activities.js';
import type { CaseStores, Level } from './seed.js';
import {
  DW_BATCH_PAUSE_MS,
  DW_DETECT_BUDGET_MS,
  DW_REPAIR_BATCH,
  DW_REPAIR_PARALLELISM,
  DW_WORKFLOW_BUDGET_MS,
  REPAIR_MODE,
  type Pair,
} from './settings.js';
import { sideConfig } from './sides.js';
import { ensureWorker, type DualWriteWorld } from './world.js';

export interface RepairResult {
  pair: Pair;
  mode: 'workflow' | 'activities' | 'skipped';
  why: string;
  ok: boolean;
  error?: string;
  totalMs: number;
  /** total without the approval wait (workflow) */
  workMs: number;
  phases: Array<{ name: string; ms: number; note?: string }>;
  actions: number;
}

/** The case's environment (dual-write target `objects`), for the activities and the workflow. */
export function writeCaseEnvironment(world: DualWriteWorld, c: CaseStores): void {
  writePairEnvironment(world.h.environmentsDir, c.environment, {
    a: sideConfig(c.a, world.pgUrlEnv),
    b: sideConfig(c.b, world.pgUrlEnv),
    workDir: c.workDir,
    dualWrite: {
      labels: { a: 'postgres', b: c.pair.b === 'sqlite' ? 'sqlite' : 'store' },
      batchSize: DW_REPAIR_BATCH,
      parallelism: DW_REPAIR_PARALLELISM,
      ...(DW_BATCH_PAUSE_MS ? { batchPause: `${DW_BATCH_PAUSE_MS}ms` } : {}),
    },
    escalation: [{ level: 1, after: '1h' }],
  });
}

/** A dualWriteRollback of the case, policy postgres-authoritative (on the harness's task queue, or another). */
export const startRepair = (world: DualWriteWorld, c: CaseStores, taskQueue = world.h.taskQueue) =>
  startDualWrite({ client: world.h.client, taskQueue }, { envName: c.environment }, { reason: 'benchmark' });

const overBudget = async (handle: WorkflowHandle, what: string): Promise<never> => {
  await handle.terminate('benchmark budget exceeded').catch(() => undefined);
  throw new Error(`the workflow did not ${what} within ${DW_WORKFLOW_BUDGET_MS / 1000} s`);
};

/** Approves the run as soon as it waits at its gate (unless it ended before). */
export async function approveWhenWaiting(handle: WorkflowHandle, started: number): Promise<void> {
  const budget = started + DW_WORKFLOW_BUDGET_MS - Date.now();
  const status = await waitForStatus(handle, (s) => Boolean((s.approval.waiting && s.planHash) || s.outcome), budget)
    // not at its gate within the budget
    .catch(() => overBudget(handle, 'reach its approval gate'));
  if (!status.outcome) await handle.signal(approveSignal, { by: 'alice', planHash: status.planHash! });
}

/** Approves the workflow as soon as it waits at its gate, then waits for its result (terminated after the budget). */
export async function approveAndWait(handle: WorkflowHandle, started: number): Promise<RunbookResult> {
  await approveWhenWaiting(handle, started);
  const deadline = started + DW_WORKFLOW_BUDGET_MS;
  return (await Promise.race([
    handle.result(),
    delay(Math.max(1000, deadline - Date.now())).then(() => overBudget(handle, 'finish')),
  ])) as RunbookResult;
}

/** The run's steps with their times and results, and the approval wait. */
export function workflowPhases(result: RunbookResult) {
  const stepMs = (name: string) => {
    const s = result.steps.find((x) => x.name === name);
    return s?.startedAt && s.endedAt ? Date.parse(s.endedAt) - Date.parse(s.startedAt) : NaN;
  };
  const phases = result.steps
    .filter((s) => s.startedAt && s.endedAt)
    .map((s) => ({
      name: s.name,
      ms: stepMs(s.name),
      note: [
        s.status !== 'succeeded' ? s.status : '',
        s.attempts > 1 ? `${s.attempts} attempts` : '',
        (s.result ?? '').replaceAll('|', '/').slice(0, 160),
      ]
        .filter(Boolean)
        .join('; '),
    }));
  const approvalMs = Number.isFinite(stepMs('approval')) ? stepMs('approval') : 0;
  return { phases, approvalMs, stepMs };
}

/** The real dualWriteRollback workflow (policy postgres-authoritative), approved as soon as it waits. */
async function repairByWorkflow(world: DualWriteWorld, c: CaseStores, why: string): Promise<RepairResult> {
  await ensureWorker(world);
  const started = Date.now();
  const handle = await startRepair(world, c);
  const result = await approveAndWait(handle, started);
  const totalMs = Date.now() - started;
  const { phases, approvalMs } = workflowPhases(result);
  const execute = result.steps.find((s) => s.name === 'execute');
  const actions = Number(/^(\d+) objects/.exec(execute?.result ?? '')?.[1] ?? NaN);
  return {
    pair: c.pair,
    mode: 'workflow',
    why,
    ok: result.outcome === 'succeeded',
    error: result.error,
    totalMs,
    workMs: totalMs - approvalMs,
    phases,
    actions,
  };
}

/** How to repair the case, and why (DW_BENCH_REPAIR). */
function repairMode(diff: CaseResult): { mode: 'workflow' | 'activities'; why: string } {
  if (REPAIR_MODE !== 'auto')
    return { mode: REPAIR_MODE === 'activities' ? 'activities' : 'workflow', why: `DW_BENCH_REPAIR=${REPAIR_MODE}` };
  // the workflow runs the default detection twice (detect, verify)
  return diff.result.finished && 2 * diff.result.ms < DW_WORKFLOW_BUDGET_MS / 2
    ? {
        mode: 'workflow',
        why: `the default detection finished in ${fmtMs(diff.result.ms)} and the workflow runs it twice (detect, verify), well within the bench's ${DW_WORKFLOW_BUDGET_MS / 1000} s workflow budget`,
      }
    : {
        mode: 'activities',
        why: `the default detection did not finish within its ${DW_DETECT_BUDGET_MS / 1000} s budget and the workflow runs it twice (detect, verify)`,
      };
}

/** Repairs every case of the level; a failed repair is reported, not thrown. */
export async function repairLevel(world: DualWriteWorld, lv: Level, results: CaseResult[]): Promise<RepairResult[]> {
  const repairs: RepairResult[] = [];
  for (const c of lv.cases) {
    writeCaseEnvironment(world, c);
    const diff = results.find((r) => r.pair.id === c.pair.id && r.level === lv.level && r.variant === 'diff')!;
    const { mode, why } = repairMode(diff);
    world.log(`${c.pair.label}: repair (${mode})`);
    try {
      const r = mode === 'workflow' ? await repairByWorkflow(world, c, why) : await repairByActivities(world, c, why);
      repairs.push(r);
      world.log(
        `${c.pair.label}: repair ${r.ok ? 'succeeded' : 'FAILED'} in ${fmtMs(r.totalMs)} (${fmtMs(r.workMs)} without approval wait)`,
      );
    } catch (error) {
      const message = (error as Error).message;
      repairs.push({
        pair: c.pair,
        mode,
        why,
        ok: false,
        error: message,
        totalMs: NaN,
        workMs: NaN,
        phases: [],
        actions: 0,
      });
      world.log(`${c.pair.label}: repair failed: ${message}`);
    }
  }
  return repairs;
}
