/** The Markdown of sections 1 and 2 (BENCHMARKS.md's results block). */
import { machineRows, type Machine } from '../support/machine.js';
import { ms, median, percentile } from './format.js';
import { OVERHEAD_COUNTS, type OverheadRun } from './overhead.js';
import { RESUME_COUNT, type ResumeRun } from './resume.js';
import {
  HEARTBEAT_EVERY_MS,
  HEARTBEAT_TIMEOUT,
  HEARTBEAT_TIMEOUT_MS,
  KILL_AFTER_PROGRESS_MS,
  NOOP_START_TO_CLOSE_TIMEOUT,
  OVERHEAD_STEPS,
  RESUME_TARGET_EXTRA_MS,
  SLEEP_MS,
  SLEEP_RETRY,
  SLEEP_RETRY_INITIAL_INTERVAL_MS,
  STEP_TARGET_MS,
  STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT,
} from './settings.js';
import { DEV_SERVER_DYNAMIC_CONFIG } from '../../src/dev/temporal-server.js';

export function engineReport(
  machine: Machine,
  date: string,
  bundleMs: number,
  overhead: OverheadRun[],
  resume: ResumeRun[],
  warnings: string[],
): string {
  const engine = overhead.filter((r) => r.variant === 'engine');
  const direct = overhead.filter((r) => r.variant === 'direct');
  const stat = (runs: OverheadRun[], pick: (r: OverheadRun) => number) => ({
    med: median(runs.map(pick)),
    p95: percentile(runs.map(pick), 95),
  });
  const e = stat(engine, (r) => r.perStepMs);
  const d = stat(direct, (r) => r.perStepMs);
  const eSteps = stat(engine, (r) => r.stepsMs / OVERHEAD_STEPS);
  const dSteps = stat(direct, (r) => r.stepsMs / OVERHEAD_STEPS);
  const eTotal = stat(engine, (r) => r.totalMs);
  const dTotal = stat(direct, (r) => r.totalMs);
  const eDispatch = stat(engine, (r) => r.dispatchPerStepMs);
  const dDispatch = stat(direct, (r) => r.dispatchPerStepMs);
  const eRest = stat(engine, (r) => r.perStepMs - r.dispatchPerStepMs);
  const dRest = stat(direct, (r) => r.perStepMs - r.dispatchPerStepMs);
  const eBetween = stat(engine, (r) => r.betweenStepsMs);
  const dBetween = stat(direct, (r) => r.betweenStepsMs);
  const eFirst = stat(engine, (r) => r.firstStepMs);
  const dFirst = stat(direct, (r) => r.firstStepMs);
  const overheadMed = e.med - d.med;
  const overheadP95 = e.p95 - d.p95;
  const overheadPass = overheadMed < STEP_TARGET_MS && overheadP95 < STEP_TARGET_MS;
  const resumeTarget = RESUME_TARGET_EXTRA_MS + HEARTBEAT_TIMEOUT_MS;
  const resumePass = resume.every((r) => r.withinTarget);
  const lines = [
    `## Results of ${date}`,
    '',
    ...machineRows(machine),
    `| Temporal CLI | ${machine.temporal} |`,
    `| Server | \`temporal server start-dev\`, headless, in-memory, on a free port, started by the bench |`,
    '',
    '### Settings',
    '',
    '| | |',
    '|---|---|',
    `| Engine overhead | ${OVERHEAD_STEPS} no-op activity steps per workflow; ${OVERHEAD_COUNTS.warmup} warm-up + ${OVERHEAD_COUNTS.runs} runs per variant, alternating; one in-process worker; no-op \`startToCloseTimeout\` ${NOOP_START_TO_CLOSE_TIMEOUT} |`,
    `| Per step | (WorkflowExecutionCompleted − WorkflowExecutionStarted, server event times) / ${OVERHEAD_STEPS}; p95 is nearest-rank (with ${OVERHEAD_COUNTS.runs} runs: the slowest) |`,
    `| Resume | A (no-op) → B (sleeps ${SLEEP_MS} ms, heartbeats every ${HEARTBEAT_EVERY_MS} ms, resumes from its heartbeat) → C (no-op); worker child process SIGKILLed during B, once the server has a heartbeat ≥ ${KILL_AFTER_PROGRESS_MS} ms into B; a new child is spawned right after the old one exits; ${RESUME_COUNT} runs |`,
    `| Heartbeat timeout | ${HEARTBEAT_TIMEOUT} (the SDK sends heartbeats at most every 0.8 × timeout = ${0.8 * HEARTBEAT_TIMEOUT_MS} ms) |`,
    `| Retry of B | initial interval ${SLEEP_RETRY.initialInterval}, backoff ${SLEEP_RETRY.backoffCoefficient}, max ${SLEEP_RETRY.maximumAttempts} attempts (as the project's verify steps) |`,
    `| Sticky queue schedule-to-start timeout | ${STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT} (as src/worker/worker.ts) |`,
    `| Worker bundle | prebuilt once with \`bundleWorkflowCode\` (${ms(bundleMs, 0)}); child workers load it (as \`WORKFLOW_BUNDLE_PATH\` does for \`npm run worker\`) |`,
    `| Workers | bench workflows (bench/engine/workflows.ts, with the \`targetLock\` workflow) + no-op/sleep activities + the engine and run activities (bench/engine/worker.ts); interceptors as \`createWorker\` (src/worker/worker.ts) |`,
    '',
    `### 1. Engine overhead (target: under ${STEP_TARGET_MS} ms per step over direct calls)`,
    '',
    '| | per step, median | per step, p95 | of which task dispatch wait, median | rest (worker + server processing), median | steps only, per step, median | workflow total, median | workflow total, p95 |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    `| Direct activity calls (baseline) | ${ms(d.med)} | ${ms(d.p95)} | ${ms(dDispatch.med)} | ${ms(dRest.med)} | ${ms(dSteps.med)} | ${ms(dTotal.med, 0)} | ${ms(dTotal.p95, 0)} |`,
    `| Runbook engine (\`rb.step\`) | ${ms(e.med)} | ${ms(e.p95)} | ${ms(eDispatch.med)} | ${ms(eRest.med)} | ${ms(eSteps.med)} | ${ms(eTotal.med, 0)} | ${ms(eTotal.p95, 0)} |`,
    `| **Engine overhead** (engine − direct) | **${ms(overheadMed)}** | **${ms(overheadP95)}** | ${ms(eDispatch.med - dDispatch.med)} | ${ms(eRest.med - dRest.med)} | ${ms(eSteps.med - dSteps.med)} | ${ms(eTotal.med - dTotal.med, 0)} | ${ms(eTotal.p95 - dTotal.p95, 0)} |`,
    '',
    `**${overheadPass ? 'Pass' : 'Fail'}**: the engine adds ${ms(overheadMed)} per step (median; ${ms(overheadP95)} at p95) to the same activity calls made directly; target under ${STEP_TARGET_MS} ms.`,
    '',
    `- "per step" = workflow total / ${OVERHEAD_STEPS}; the engine's total includes its start (the \`lock target\` step: one \`requestTargetLock\` activity, which update-with-starts the target's lock workflow and returns its answer) and its finish (the release, one \`writeEvidence\` activity, the Outcome search attribute), spread over the steps. "Steps only" ends at the ${OVERHEAD_STEPS}th step's completion (the lock included).`,
    `- "task dispatch wait" = the Scheduled → Started time of every workflow and activity task, per step. The dev server's history service polls its transfer queue at most \`history.transferProcessorMaxPollRPS\` times a second (default 20), which alone made every step of a sequential workflow ~100 ms (engine and direct alike) in the first version of this bench. \`src/dev/temporal-server.ts\` (used by this bench, the tests and \`npm start\`) now starts the dev server with ${Object.entries(
      DEV_SERVER_DYNAMIC_CONFIG,
    )
      .map(([k, v]) => `\`${k}=${v}\``)
      .join(', ')}; a production server's defaults differ and are tuned separately.`,
    '',
    'Per step and per run: what one more step costs (between the first and the last step), and what a run costs before its first step is done (the engine: taking the target lock).',
    '',
    '| | one more step, median | one more step, p95 | start → first step done, median | start → first step done, p95 |',
    '|---|---:|---:|---:|---:|',
    `| Direct activity calls (baseline) | ${ms(dBetween.med)} | ${ms(dBetween.p95)} | ${ms(dFirst.med, 0)} | ${ms(dFirst.p95, 0)} |`,
    `| Runbook engine (\`rb.step\`) | ${ms(eBetween.med)} | ${ms(eBetween.p95)} | ${ms(eFirst.med, 0)} | ${ms(eFirst.p95, 0)} |`,
    `| **Engine** (engine − direct) | **${ms(eBetween.med - dBetween.med)}** | ${ms(eBetween.p95 - dBetween.p95)} | **${ms(eFirst.med - dFirst.med, 0)}** | ${ms(eFirst.p95 - dFirst.p95, 0)} |`,
    '',
    'Each run (per step):',
    '',
    `| run | ${engine.map((_, i) => String(i + 1)).join(' | ')} |`,
    `|---|${engine.map(() => '---:').join('|')}|`,
    `| direct | ${direct.map((r) => ms(r.perStepMs)).join(' | ')} |`,
    `| engine | ${engine.map((r) => ms(r.perStepMs)).join(' | ')} |`,
    '',
    `### 2. Resume after SIGKILL (target: B runs again within 2 s + heartbeat timeout = ${resumeTarget} ms of the new worker's spawn)`,
    '',
    'Times from the new worker process\'s spawn, except "last heartbeat", which is how long before the kill the server had recorded B\'s last heartbeat.',
    '',
    '| run | new worker startup (load + connect + create) | last heartbeat before kill | B resumed (attempt) | B completed | B remaining work | C completed | sticky timeouts | within target |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---|',
    ...resume.map(
      (r) =>
        `| ${r.run} | ${ms(r.startupMs, 0)} (${ms(r.loadedMs, 0)} + ${ms(r.connectMs, 0)} + ${ms(r.createMs, 0)}) | ${ms(r.sinceHeartbeatAtKillMs, 0)} | ${ms(r.resumedMs, 0)} (#${r.attempt}) | ${ms(r.bCompletedMs, 0)} | ${ms(r.remainingWorkMs, 0)} | ${ms(r.cCompletedMs, 0)} | ${r.stickyTimeouts} | ${r.withinTarget ? 'yes' : 'no'} |`,
    ),
    '',
    `**${resumePass ? 'Pass' : 'Fail'}**: B ran again ${resume.map((r) => ms(r.resumedMs, 0)).join(', ')} after the new worker's spawn (target ${resumeTarget} ms).`,
    '',
    `- "B resumed": the retried attempt starting on the new worker (its own clock; same machine as the server). It waits for the heartbeat timeout (${HEARTBEAT_TIMEOUT} after the last recorded heartbeat) and B's retry backoff (${SLEEP_RETRY_INITIAL_INTERVAL_MS} ms); the new worker starts in parallel.`,
    `- "B completed" / "C completed": the ActivityTaskCompleted event times in the history. B's remaining work is the sleep still to do after resuming from its last recorded heartbeat.`,
    `- "sticky timeouts": WorkflowTaskTimedOut events after the kill: a workflow task offered to the dead worker's sticky queue, moved to the normal queue after ${STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT}; this sits between B's and C's completion.`,
  ];
  if (warnings.length) lines.push('', '### Warnings', '', ...warnings.map((w) => `- ${w}`));
  return lines.join('\n');
}
