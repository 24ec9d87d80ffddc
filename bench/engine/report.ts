/** The Markdown of sections 1 and 2 (BENCHMARKS.md's results block), on the dev server and, beside it, on a cluster. */
import { machineRows, type Machine } from '../support/machine.js';
import { ms, median, percentile } from './format.js';
import type { EngineResults } from './cluster.js';
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

type Stat = { med: number; p95: number };
const stat = (runs: OverheadRun[], pick: (r: OverheadRun) => number): Stat => ({
  med: median(runs.map(pick)),
  p95: percentile(runs.map(pick), 95),
});

/** The medians and p95s section 1 reports, per variant and for the engine − direct difference. */
function overheadStats(overhead: OverheadRun[]) {
  const engine = overhead.filter((r) => r.variant === 'engine');
  const direct = overhead.filter((r) => r.variant === 'direct');
  const both = (pick: (r: OverheadRun) => number) => ({ e: stat(engine, pick), d: stat(direct, pick) });
  return {
    engine,
    direct,
    perStep: both((r) => r.perStepMs),
    steps: both((r) => r.stepsMs / OVERHEAD_STEPS),
    total: both((r) => r.totalMs),
    dispatch: both((r) => r.dispatchPerStepMs),
    rest: both((r) => r.perStepMs - r.dispatchPerStepMs),
    between: both((r) => r.betweenStepsMs),
    first: both((r) => r.firstStepMs),
  };
}

const overheadOf = (o: ReturnType<typeof overheadStats>) => ({
  med: o.perStep.e.med - o.perStep.d.med,
  p95: o.perStep.e.p95 - o.perStep.d.p95,
});
const overheadPasses = (o: ReturnType<typeof overheadStats>) => {
  const { med, p95 } = overheadOf(o);
  return med < STEP_TARGET_MS && p95 < STEP_TARGET_MS;
};
const resumeTarget = RESUME_TARGET_EXTRA_MS + HEARTBEAT_TIMEOUT_MS;

/** Section 1's tables and verdict for one server. */
function overheadTables(r: EngineResults, on: string): string[] {
  const o = overheadStats(r.overhead);
  const { perStep: p, steps, total, dispatch, rest, between, first } = o;
  const { med, p95 } = overheadOf(o);
  return [
    '| | per step, median | per step, p95 | of which task dispatch wait, median | rest (worker + server processing), median | steps only, per step, median | workflow total, median | workflow total, p95 |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    `| Direct activity calls (baseline) | ${ms(p.d.med)} | ${ms(p.d.p95)} | ${ms(dispatch.d.med)} | ${ms(rest.d.med)} | ${ms(steps.d.med)} | ${ms(total.d.med, 0)} | ${ms(total.d.p95, 0)} |`,
    `| Runbook engine (\`rb.step\`) | ${ms(p.e.med)} | ${ms(p.e.p95)} | ${ms(dispatch.e.med)} | ${ms(rest.e.med)} | ${ms(steps.e.med)} | ${ms(total.e.med, 0)} | ${ms(total.e.p95, 0)} |`,
    `| **Engine overhead** (engine − direct) | **${ms(med)}** | **${ms(p95)}** | ${ms(dispatch.e.med - dispatch.d.med)} | ${ms(rest.e.med - rest.d.med)} | ${ms(steps.e.med - steps.d.med)} | ${ms(total.e.med - total.d.med, 0)} | ${ms(total.e.p95 - total.d.p95, 0)} |`,
    '',
    `**${overheadPasses(o) ? 'Pass' : 'Fail'}**${on}: the engine adds ${ms(med)} per step (median; ${ms(p95)} at p95) to the same activity calls made directly; target under ${STEP_TARGET_MS} ms.`,
    '',
    'Per step and per run: what one more step costs (between the first and the last step), and what a run costs before its first step is done (the engine: taking the target lock).',
    '',
    '| | one more step, median | one more step, p95 | start → first step done, median | start → first step done, p95 |',
    '|---|---:|---:|---:|---:|',
    `| Direct activity calls (baseline) | ${ms(between.d.med)} | ${ms(between.d.p95)} | ${ms(first.d.med, 0)} | ${ms(first.d.p95, 0)} |`,
    `| Runbook engine (\`rb.step\`) | ${ms(between.e.med)} | ${ms(between.e.p95)} | ${ms(first.e.med, 0)} | ${ms(first.e.p95, 0)} |`,
    `| **Engine** (engine − direct) | **${ms(between.e.med - between.d.med)}** | ${ms(between.e.p95 - between.d.p95)} | **${ms(first.e.med - first.d.med, 0)}** | ${ms(first.e.p95 - first.d.p95, 0)} |`,
    '',
    'Each run (per step):',
    '',
    `| run | ${o.engine.map((_, i) => String(i + 1)).join(' | ')} |`,
    `|---|${o.engine.map(() => '---:').join('|')}|`,
    `| direct | ${o.direct.map((x) => ms(x.perStepMs)).join(' | ')} |`,
    `| engine | ${o.engine.map((x) => ms(x.perStepMs)).join(' | ')} |`,
  ];
}

/** Section 2's table and verdict for one server. */
function resumeTable(resume: ResumeRun[], on: string): string[] {
  return [
    '| run | new worker startup (load + connect + create) | last heartbeat before kill | B resumed (attempt) | B completed | B remaining work | C completed | sticky timeouts | within target |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---|',
    ...resume.map(
      (r) =>
        `| ${r.run} | ${ms(r.startupMs, 0)} (${ms(r.loadedMs, 0)} + ${ms(r.connectMs, 0)} + ${ms(r.createMs, 0)}) | ${ms(r.sinceHeartbeatAtKillMs, 0)} | ${ms(r.resumedMs, 0)} (#${r.attempt}) | ${ms(r.bCompletedMs, 0)} | ${ms(r.remainingWorkMs, 0)} | ${ms(r.cCompletedMs, 0)} | ${r.stickyTimeouts} | ${r.withinTarget ? 'yes' : 'no'} |`,
    ),
    '',
    `**${resume.every((r) => r.withinTarget) ? 'Pass' : 'Fail'}**${on}: B ran again ${resume.map((r) => ms(r.resumedMs, 0)).join(', ')} after the new worker's spawn (target ${resumeTarget} ms).`,
  ];
}

/** Each server's part under its own heading when there are several, as is when there is one. */
function perServer(servers: EngineResults[], part: (r: EngineResults, on: string) => string[]): string[] {
  if (servers.length === 1) return part(servers[0]!, '');
  return servers.flatMap((r) => [`#### On the ${r.name}`, '', ...part(r, ` on the ${r.name}`), '']);
}

/** The dev server and the cluster side by side, and what the difference says. */
function sideBySide(dev: EngineResults, cluster: EngineResults): string[] {
  const d = overheadStats(dev.overhead);
  const c = overheadStats(cluster.overhead);
  const resumed = (r: EngineResults) => median(r.resume.map((x) => x.resumedMs));
  const cDone = (r: EngineResults) => median(r.resume.map((x) => x.cCompletedMs));
  const row = (label: string, a: number, b: number, digits = 1) =>
    `| ${label} | ${ms(a, digits)} | ${ms(b, digits)} | ${b - a >= 0 ? '+' : ''}${ms(b - a, digits)} |`;
  const ratio = (a: number, b: number) => `${(b / a).toFixed(1)}×`;
  const more = (a: number, b: number, digits = 1) =>
    b >= a ? `${ms(b - a, digits)} more` : `${ms(a - b, digits)} less`;
  return [
    `### The dev server and the cluster, same run (medians; measured one after the other, the ${dev.name} first)`,
    '',
    `| | ${dev.name} | ${cluster.name} | ${cluster.name} − ${dev.name} |`,
    '|---|---:|---:|---:|',
    row('Direct activity calls, per step', d.perStep.d.med, c.perStep.d.med),
    row('of which task dispatch wait', d.dispatch.d.med, c.dispatch.d.med),
    row('of which the rest (worker + server processing)', d.rest.d.med, c.rest.d.med),
    row('Runbook engine, per step', d.perStep.e.med, c.perStep.e.med),
    row('**Engine overhead per step** (engine − direct)', overheadOf(d).med, overheadOf(c).med),
    row('Engine: start → first step done (the target lock)', d.first.e.med, c.first.e.med, 0),
    row('Resume: B running again after the new worker’s spawn', resumed(dev), resumed(cluster), 0),
    row('Resume: C completed after the spawn', cDone(dev), cDone(cluster), 0),
    `| Load average (1 min) when its measurements began | ${dev.loadAverage.toFixed(1)} | ${cluster.loadAverage.toFixed(1)} | |`,
    '',
    `A plain activity step costs ${ratio(d.perStep.d.med, c.perStep.d.med)} as much on the cluster (${more(d.perStep.d.med, c.perStep.d.med)}), ${ms(c.dispatch.d.med - d.dispatch.d.med)} of the difference in dispatch wait (a task's Scheduled → Started: its history update committed, the transfer task handed to matching, matched to the polling worker). ` +
      'Both servers run the same server code (v1.29.1), the four services talking gRPC on loopback, with the same transfer-queue polling (`history.transferProcessorMaxPollRPS=1000`). ' +
      'The dev server keeps the services in one process, with one history shard, on SQLite in memory: a history update is a write to memory. ' +
      'The cluster runs each service in its own process, with four shards and persistence on PostgreSQL, where each history update is a transaction committed to disk — on the same two cores as PostgreSQL and the worker. ' +
      'More shards do not make one run faster: a workflow lives on one shard, whose events are processed in order; shards let many runs proceed at once (and spread them over history hosts in production).',
    '',
    `The engine's own overhead is ${ms(overheadOf(c).med)} per step on the cluster against ${ms(overheadOf(d).med)} on the dev server: it adds the same tasks on both (the lock workflow's update-with-start and its activity, the evidence activity, the search attribute), each costing what a task costs on that server. ` +
      `Resume after SIGKILL is mostly timers (the ${HEARTBEAT_TIMEOUT} heartbeat timeout, B's ${SLEEP_RETRY_INITIAL_INTERVAL_MS} ms retry backoff, the ${STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT} sticky timeout): on the cluster B ran again ${more(resumed(dev), resumed(cluster), 0)} after the new worker's spawn, and C completed ${more(cDone(dev), cDone(cluster), 0)}.`,
    '',
  ];
}

export function engineReport(
  machine: Machine,
  date: string,
  bundleMs: number,
  servers: EngineResults[],
  warnings: string[],
): string {
  const [dev, cluster] = servers;
  const lines = [
    `## Results of ${date}`,
    '',
    ...machineRows(machine),
    `| Temporal CLI | ${machine.temporal} |`,
    ...servers.map((r) => `| ${r.name === 'dev server' ? 'Server' : 'Cluster'} | ${r.description} |`),
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
    ...(dev && cluster ? sideBySide(dev, cluster) : []),
    `### 1. Engine overhead (target: under ${STEP_TARGET_MS} ms per step over direct calls)`,
    '',
    ...perServer(servers, overheadTables),
    '',
    `- "per step" = workflow total / ${OVERHEAD_STEPS}; the engine's total includes its start (the \`lock target\` step: one \`requestTargetLock\` activity, which update-with-starts the target's lock workflow and returns its answer) and its finish (the release, one \`writeEvidence\` activity, the Outcome search attribute), spread over the steps. "Steps only" ends at the ${OVERHEAD_STEPS}th step's completion (the lock included).`,
    `- "task dispatch wait" = the Scheduled → Started time of every workflow and activity task, per step. The dev server's history service polls its transfer queue at most \`history.transferProcessorMaxPollRPS\` times a second (default 20), which alone made every step of a sequential workflow ~100 ms (engine and direct alike) in the first version of this bench. \`src/dev/temporal-server.ts\` (used by this bench, the tests and \`npm start\`) now starts the dev server with ${Object.entries(
      DEV_SERVER_DYNAMIC_CONFIG,
    )
      .map(([k, v]) => `\`${k}=${v}\``)
      .join(
        ', ',
      )}, and the cluster's config/temporal/dynamicconfig.yaml sets the same; a production server's defaults differ and are tuned separately.`,
    '',
    `### 2. Resume after SIGKILL (target: B runs again within 2 s + heartbeat timeout = ${resumeTarget} ms of the new worker's spawn)`,
    '',
    'Times from the new worker process\'s spawn, except "last heartbeat", which is how long before the kill the server had recorded B\'s last heartbeat.',
    '',
    ...perServer(servers, (r, on) => resumeTable(r.resume, on)),
    '',
    `- "B resumed": the retried attempt starting on the new worker (its own clock; same machine as the server). It waits for the heartbeat timeout (${HEARTBEAT_TIMEOUT} after the last recorded heartbeat) and B's retry backoff (${SLEEP_RETRY_INITIAL_INTERVAL_MS} ms); the new worker starts in parallel.`,
    `- "B completed" / "C completed": the ActivityTaskCompleted event times in the history. B's remaining work is the sleep still to do after resuming from its last recorded heartbeat.`,
    `- "sticky timeouts": WorkflowTaskTimedOut events after the kill: a workflow task offered to the dead worker's sticky queue, moved to the normal queue after ${STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT}; this sits between B's and C's completion.`,
  ];
  if (warnings.length) lines.push('', '### Warnings', '', ...warnings.map((w) => `- ${w}`));
  return lines.join('\n');
}
