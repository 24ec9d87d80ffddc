/**
 * `npm run bench`: engine overhead and resume-after-SIGKILL latency, against a real Temporal dev server that
 * this script starts (free port, headless, in-memory) and stops; then dual-write drift detection at 1M objects
 * (bench/dual-write.ts, which starts its own Postgres). Prints Markdown and updates BENCHMARKS.md.
 * Every process it starts is stopped at the end, on error, on Ctrl-C, and when the time budget runs out.
 * BENCH_SKIP_DUAL_WRITE=1 skips section 3.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter, type Timestamp } from '@temporalio/common';
import {
  DefaultLogger,
  NativeConnection,
  Runtime,
  Worker,
  bundleWorkflowCode,
  makeTelemetryFilterString,
} from '@temporalio/worker';
import { pino } from 'pino';
import { createEngineActivities } from '../src/activities/engine.js';
import { generateKeyPair } from '../src/activities/keys.js';
import { createRunActivities } from '../src/activities/runs.js';
import { freePort } from '../src/dev/ports.js';
import {
  DEV_SERVER_DYNAMIC_CONFIG,
  repoRoot,
  startDevServer,
  temporalCli,
  type DevServer,
} from '../src/dev/temporal-server.js';
import { ATTEMPT_MARKER } from '../src/shared/constants.js';
import { attemptInterceptor } from '../src/worker/interceptors.js';
import { workflowInterceptorModules } from '../src/worker/worker.js';
import { createBenchActivities, type SleepResult } from './activities.js';
import { killDualWriteBenchNow, runDualWriteBench, stopDualWriteBench, writeDualWriteSection } from './dual-write.js';
import {
  HEARTBEAT_EVERY_MS,
  HEARTBEAT_TIMEOUT,
  HEARTBEAT_TIMEOUT_MS,
  KILL_AFTER_PROGRESS_MS,
  NOOP_START_TO_CLOSE_TIMEOUT,
  OVERHEAD_RUNS,
  OVERHEAD_STEPS,
  OVERHEAD_WARMUP_RUNS,
  RESUME_RUNS,
  RESUME_TARGET_EXTRA_MS,
  SHUTDOWN_GRACE_TIME,
  SLEEP_MS,
  SLEEP_RETRY,
  SLEEP_RETRY_INITIAL_INTERVAL_MS,
  STEP_TARGET_MS,
  STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT,
} from './settings.js';
import type { ReadyMessage } from './worker-child.js';

/** sections 1 and 2 take about a minute, section 3 (dual-write, 1M objects) about six to seven */
const BUDGET_MS = 30 * 60_000;
const SKIP_DUAL_WRITE = process.env.BENCH_SKIP_DUAL_WRITE === '1';
const benchDir = fileURLToPath(new URL('.', import.meta.url));
const workflowsPath = join(benchDir, 'workflows.ts');
const childEntry = join(benchDir, 'worker-child.ts');
const benchmarksFile = join(repoRoot, 'BENCHMARKS.md');
const START_MARK = '<!-- bench:results:start -->';
const END_MARK = '<!-- bench:results:end -->';

// ---------------------------------------------------------------------------------------------------------
// processes this script started, stopped whatever happens

const children = new Set<ChildProcess>();
let server: DevServer | undefined;
let inProcessWorker: { worker: Worker; running: Promise<void> } | undefined;
const connections: Array<{ close(): Promise<void> }> = [];
/** the run's temp dir (bundle, evidence, logs): removed after a successful run, kept otherwise */
let tempRoot: string | undefined;

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (!alive(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (alive(child)) {
    child.kill(signal);
    if (!(await waitExit(child, 15_000))) {
      child.kill('SIGKILL');
      await waitExit(child, 5_000);
    }
  }
  children.delete(child);
}

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    if (inProcessWorker) {
      const { worker, running } = inProcessWorker;
      inProcessWorker = undefined;
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await Promise.race([running.catch(() => undefined), delay(15_000)]);
    }
    await Promise.all([...children].map((child) => stopChild(child)));
    await stopDualWriteBench();
    for (const connection of connections.splice(0)) await connection.close().catch(() => undefined);
    await server?.stop();
    server = undefined;
  })();
  return cleaning;
}

// the last resort (process.exit, an uncaught error): no child outlives the bench
process.on('exit', () => {
  for (const child of children) if (alive(child)) child.kill('SIGKILL');
  if (server && alive(server.process)) server.process.kill('SIGKILL');
  killDualWriteBenchNow();
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`bench: ${signal}, stopping${tempRoot ? `; logs kept in ${tempRoot}` : ''}`);
    void cleanup().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------------------
// helpers

function tsMs(ts: Timestamp | null | undefined): number {
  if (!ts) return NaN;
  const seconds = ts.seconds ?? 0;
  return (typeof seconds === 'number' ? seconds : seconds.toNumber()) * 1000 + (ts.nanos ?? 0) / 1e6;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** nearest-rank percentile (with 5 samples, p95 is the largest) */
function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)]!;
}

const ms = (value: number, digits = 1): string => (Number.isFinite(value) ? `${value.toFixed(digits)} ms` : 'n/a');
const log = (message: string): void => void process.stderr.write(`[bench] ${message}\n`);

async function withTimeout<T>(what: string, timeoutMs: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The history's events with the activity type of each completed activity, in order. */
async function historyOf(handle: WorkflowHandle) {
  const history = await handle.fetchHistory();
  const events = history.events ?? [];
  const scheduled = new Map<string, string>();
  for (const e of events) {
    if (e.activityTaskScheduledEventAttributes)
      scheduled.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
  }
  // task dispatch wait: each workflow/activity task's Scheduled → Started
  const at = new Map<string, number>(events.map((e) => [String(e.eventId), tsMs(e.eventTime)]));
  let dispatchMs = 0;
  for (const e of events) {
    const scheduledId =
      e.workflowTaskStartedEventAttributes?.scheduledEventId ?? e.activityTaskStartedEventAttributes?.scheduledEventId;
    if (scheduledId != null) dispatchMs += tsMs(e.eventTime) - (at.get(String(scheduledId)) ?? NaN);
  }
  const started = events.find((e) => e.workflowExecutionStartedEventAttributes);
  const completed = events.find((e) => e.workflowExecutionCompletedEventAttributes);
  const activities = events
    .filter((e) => e.activityTaskCompletedEventAttributes)
    .map((e) => ({
      type: scheduled.get(String(e.activityTaskCompletedEventAttributes!.scheduledEventId)) ?? '?',
      at: tsMs(e.eventTime),
      result: e.activityTaskCompletedEventAttributes!.result?.payloads?.[0],
    }));
  return {
    events,
    startedAt: tsMs(started?.eventTime),
    completedAt: tsMs(completed?.eventTime),
    activities,
    dispatchMs,
  };
}

function temporalVersion(): string {
  let version = 'unknown';
  try {
    version = execFileSync(temporalCli, ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim();
  } catch (err) {
    version = `unknown (${(err as Error).message})`;
  }
  const stamp = `${temporalCli}.version`;
  if (existsSync(stamp)) version += `; built from github.com/temporalio/cli ${readFileSync(stamp, 'utf8').trim()}`;
  return version;
}

/** The sticky timeout the bench uses must still be the one src/worker/worker.ts gives real workers. */
function checkStickyTimeout(): string | undefined {
  const source = readFileSync(join(repoRoot, 'src', 'worker', 'worker.ts'), 'utf8');
  const match = /stickyQueueScheduleToStartTimeout:\s*['"]([^'"]+)['"]/.exec(source);
  if (match?.[1] === STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT) return undefined;
  return `src/worker/worker.ts sets stickyQueueScheduleToStartTimeout ${match ? `'${match[1]}'` : '(not found)'}, the bench uses '${STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT}'`;
}

// ---------------------------------------------------------------------------------------------------------
// 1. engine overhead

interface OverheadRun {
  variant: 'engine' | 'direct';
  totalMs: number;
  /** workflow start → the last no-op step's completion */
  stepsMs: number;
  perStepMs: number;
  /** per step: time tasks waited on the server between Scheduled and Started (dispatch) */
  dispatchPerStepMs: number;
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
  };
}

async function benchOverhead(
  address: string,
  bundlePath: string,
  evidenceDir: string,
  environmentsDir: string,
  client: Client,
): Promise<OverheadRun[]> {
  const connection = await NativeConnection.connect({ address });
  connections.push(connection);
  const taskQueue = `bench-overhead-${Date.now()}`;
  const worker = await Worker.create({
    connection,
    namespace: 'default',
    taskQueue,
    workflowBundle: { codePath: bundlePath },
    activities: {
      ...createEngineActivities({
        environmentsDir,
        evidenceDir,
        log: pino({ level: 'warn' }, pino.destination(2)),
        signingKey: generateKeyPair(),
      }),
      ...createRunActivities({ environmentsDir, client }),
      ...createBenchActivities(),
    },
    // the interceptors of createWorker (src/worker/worker.ts); its workflow interceptor modules are in the bundle
    interceptors: { activity: [attemptInterceptor] },
    stickyQueueScheduleToStartTimeout: STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT,
    shutdownGraceTime: SHUTDOWN_GRACE_TIME,
  });
  inProcessWorker = { worker, running: worker.run() };
  const runs: OverheadRun[] = [];
  try {
    for (let i = 0; i < OVERHEAD_WARMUP_RUNS + OVERHEAD_RUNS; i++) {
      // alternate which variant goes first, so neither always runs on a warmer system
      const order: Array<OverheadRun['variant']> = i % 2 === 0 ? ['engine', 'direct'] : ['direct', 'engine'];
      for (const variant of order) {
        const run = await overheadRun(client, taskQueue, variant, `${taskQueue}-${i}`);
        const warmup = i < OVERHEAD_WARMUP_RUNS;
        log(
          `overhead ${warmup ? 'warm-up' : `run ${i - OVERHEAD_WARMUP_RUNS + 1}`} ${variant}: ${ms(run.totalMs)} total, ${ms(run.perStepMs)} per step (${ms(run.dispatchPerStepMs)} dispatch)`,
        );
        if (!warmup) runs.push(run);
      }
    }
  } finally {
    worker.shutdown();
    await inProcessWorker.running;
    inProcessWorker = undefined;
  }
  return runs;
}

// ---------------------------------------------------------------------------------------------------------
// 2. resume after SIGKILL

interface SpawnedWorker {
  child: ChildProcess;
  spawnedAt: number;
  ready: Promise<{ at: number; message: ReadyMessage }>;
}

function spawnWorker(env: NodeJS.ProcessEnv, logFile: string): SpawnedWorker {
  const err = openSync(logFile, 'a');
  const spawnedAt = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', childEntry], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', err],
  });
  closeSync(err);
  children.add(child);
  child.once('exit', () => children.delete(child));
  const ready = new Promise<{ at: number; message: ReadyMessage }>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const message = JSON.parse(line) as ReadyMessage;
        if (message.event === 'ready') resolve({ at: Date.now(), message });
      } catch {
        // not ours
      }
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`bench worker exited (${signal ?? code}) before it was ready; see ${logFile}`)),
    );
  });
  ready.catch(() => undefined);
  return { child, spawnedAt, ready };
}

interface ResumeRun {
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

async function resumeRun(
  run: number,
  client: Client,
  childEnv: NodeJS.ProcessEnv,
  logFile: string,
): Promise<ResumeRun> {
  const taskQueue = `bench-resume-${Date.now()}-${run}`;
  const env = { ...childEnv, TEMPORAL_TASK_QUEUE: taskQueue };
  const first = spawnWorker(env, logFile);
  await withTimeout('first bench worker start', 60_000, first.ready);
  const handle = await client.workflow.start('benchResume', {
    taskQueue,
    workflowId: `bench-resume-${taskQueue}`,
    args: [{ sleepMs: SLEEP_MS, heartbeatEveryMs: HEARTBEAT_EVERY_MS }],
  });
  const { lastHeartbeatAt } = await waitForHeartbeat(handle);
  const killedAt = Date.now();
  first.child.kill('SIGKILL');
  if (!(await waitExit(first.child, 10_000))) throw new Error('the killed worker did not exit');

  const second = spawnWorker(env, logFile);
  try {
    const ready = await withTimeout('second bench worker start', 60_000, second.ready);
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
    return {
      run,
      startupMs: ready.at - second.spawnedAt,
      loadedMs: ready.message.loadedMs,
      connectMs: ready.message.connectedMs - ready.message.loadedMs,
      createMs: ready.message.createdMs - ready.message.connectedMs,
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

// ---------------------------------------------------------------------------------------------------------
// report

interface Machine {
  cpu: string;
  cpus: number;
  memory: string;
  os: string;
  node: string;
  temporal: string;
}

function report(
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
  const overheadMed = e.med - d.med;
  const overheadP95 = e.p95 - d.p95;
  const overheadPass = overheadMed < STEP_TARGET_MS && overheadP95 < STEP_TARGET_MS;
  const resumeTarget = RESUME_TARGET_EXTRA_MS + HEARTBEAT_TIMEOUT_MS;
  const resumePass = resume.every((r) => r.withinTarget);
  const lines = [
    `## Results of ${date}`,
    '',
    '### Machine',
    '',
    '| | |',
    '|---|---|',
    `| CPU | ${machine.cpu} × ${machine.cpus} |`,
    `| Memory | ${machine.memory} |`,
    `| OS | ${machine.os} |`,
    `| Node | ${machine.node} |`,
    `| Temporal CLI | ${machine.temporal} |`,
    `| Server | \`temporal server start-dev\`, headless, in-memory, on a free port, started by the bench |`,
    '',
    '### Settings',
    '',
    '| | |',
    '|---|---|',
    `| Engine overhead | ${OVERHEAD_STEPS} no-op activity steps per workflow; ${OVERHEAD_WARMUP_RUNS} warm-up + ${OVERHEAD_RUNS} runs per variant, alternating; one in-process worker; no-op \`startToCloseTimeout\` ${NOOP_START_TO_CLOSE_TIMEOUT} |`,
    `| Per step | (WorkflowExecutionCompleted − WorkflowExecutionStarted, server event times) / ${OVERHEAD_STEPS}; p95 is nearest-rank (with ${OVERHEAD_RUNS} runs: the slowest) |`,
    `| Resume | A (no-op) → B (sleeps ${SLEEP_MS} ms, heartbeats every ${HEARTBEAT_EVERY_MS} ms, resumes from its heartbeat) → C (no-op); worker child process SIGKILLed during B, once the server has a heartbeat ≥ ${KILL_AFTER_PROGRESS_MS} ms into B; a new child is spawned right after the old one exits; ${RESUME_RUNS} runs |`,
    `| Heartbeat timeout | ${HEARTBEAT_TIMEOUT} (the SDK sends heartbeats at most every 0.8 × timeout = ${0.8 * HEARTBEAT_TIMEOUT_MS} ms) |`,
    `| Retry of B | initial interval ${SLEEP_RETRY.initialInterval}, backoff ${SLEEP_RETRY.backoffCoefficient}, max ${SLEEP_RETRY.maximumAttempts} attempts (as the project's verify steps) |`,
    `| Sticky queue schedule-to-start timeout | ${STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT} (as src/worker/worker.ts) |`,
    `| Worker bundle | prebuilt once with \`bundleWorkflowCode\` (${ms(bundleMs, 0)}); child workers load it (as \`WORKFLOW_BUNDLE_PATH\` does for \`npm run worker\`) |`,
    `| Workers | bench workflows (bench/workflows.ts) + no-op/sleep activities + the engine activities; interceptors as \`createWorker\` (src/worker/worker.ts) |`,
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
    `- "per step" = workflow total / ${OVERHEAD_STEPS}; the engine's total includes its finish (one \`writeEvidence\` activity, the Outcome search attribute), spread over the steps. "Steps only" ends at the ${OVERHEAD_STEPS}th step's completion.`,
    `- "task dispatch wait" = the Scheduled → Started time of every workflow and activity task, per step. The dev server's history service polls its transfer queue at most \`history.transferProcessorMaxPollRPS\` times a second (default 20), which alone made every step of a sequential workflow ~100 ms (engine and direct alike) in the first version of this bench. \`src/dev/temporal-server.ts\` (used by this bench, the tests and \`npm start\`) now starts the dev server with ${Object.entries(
      DEV_SERVER_DYNAMIC_CONFIG,
    )
      .map(([k, v]) => `\`${k}=${v}\``)
      .join(', ')}; a production server's defaults differ and are tuned separately.`,
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

function writeBenchmarks(section: string): void {
  const block = `${START_MARK}\n${section}\n${END_MARK}`;
  if (existsSync(benchmarksFile)) {
    const text = readFileSync(benchmarksFile, 'utf8');
    const start = text.indexOf(START_MARK);
    const end = text.indexOf(END_MARK);
    if (start >= 0 && end > start) {
      writeFileSync(benchmarksFile, `${text.slice(0, start)}${block}${text.slice(end + END_MARK.length)}`);
      return;
    }
  }
  const intro = [
    '# Benchmarks',
    '',
    '`npm run bench` (bench/run.ts) starts its own Temporal dev server (free port, headless, in-memory), runs the',
    'measurements below against it, prints the tables, rewrites the results section of this file, and stops every',
    'process it started. It takes about twelve minutes (sections 1 and 2 about one); it gives up after 30 minutes.',
    '',
    '1. **Engine overhead**: a runbook of no-op activity steps (`Runbook.step`, bench/workflows.ts `benchEngineSteps`)',
    '   against the same activity calls made directly in a plain workflow (`benchDirectSteps`), on one worker.',
    '2. **Resume after SIGKILL**: a worker child process (bench/worker-child.ts) is killed with SIGKILL while a',
    '   heartbeating step runs; a new worker process is spawned and the bench measures from its spawn until the',
    '   interrupted step runs again and until the next steps complete (history event times).',
    '3. **Dual-write detection** (bench/dual-write.ts): drift detection between Postgres and an object store / SQLite',
    '   at 1M objects and 0.1 / 1 / 10 % drift, against a naive export-and-sort baseline, and the repair of 1 % drift;',
    '   its results are in their own block, after the results of sections 1 and 2.',
    '',
    'The results below are from one run on the machine described; rerun `npm run bench` to refresh them.',
    '',
  ].join('\n');
  writeFileSync(benchmarksFile, `${intro}\n${block}\n`);
}

// ---------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const warnings: string[] = [];
  const stickyMismatch = checkStickyTimeout();
  if (stickyMismatch) warnings.push(stickyMismatch);
  const cpus = os.cpus();
  const machine: Machine = {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cpus: cpus.length,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    temporal: temporalVersion(),
  };
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const root = mkdtempSync(join(os.tmpdir(), 'durable-runbooks-bench-'));
  tempRoot = root;
  const evidenceDir = join(root, 'evidence');
  mkdirSync(evidenceDir, { recursive: true });
  // the bench workflows run on target bench/noop: the engine takes its lock like any runbook's
  const environmentsDir = join(root, 'environments');
  mkdirSync(environmentsDir, { recursive: true });
  writeFileSync(join(environmentsDir, 'bench.yaml'), 'name: bench\ntargets:\n  noop: { description: no-op steps }\n');
  let ok = false;
  try {
    Runtime.install({
      logger: new DefaultLogger('WARN'),
      telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) } },
    });
    log(`starting a dev server and bundling ${workflowsPath}`);
    const bundleStarted = Date.now();
    const [port, bundle] = await Promise.all([
      freePort(),
      bundleWorkflowCode({
        workflowsPath,
        workflowInterceptorModules,
        logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
      }).then((b) => ({
        ...b,
        ms: Date.now() - bundleStarted,
      })),
    ]);
    const bundlePath = join(root, 'workflow-bundle.js');
    writeFileSync(bundlePath, bundle.code);
    server = await startDevServer({ port, logFile: join(root, 'temporal.log') });
    log(`dev server on ${server.address}`);
    const connection = await Connection.connect({ address: server.address });
    connections.push(connection);
    const client = new Client({ connection });

    log('1. engine overhead');
    const overhead = await benchOverhead(server.address, bundlePath, evidenceDir, environmentsDir, client);

    log('2. resume after SIGKILL');
    const childEnv: NodeJS.ProcessEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: server.address,
      WORKFLOW_BUNDLE_PATH: bundlePath,
      EVIDENCE_DIR: evidenceDir,
      ENVIRONMENTS_DIR: environmentsDir,
    };
    const resume: ResumeRun[] = [];
    for (let run = 1; run <= RESUME_RUNS; run++) {
      const r = await resumeRun(run, client, childEnv, join(root, 'worker.log'));
      log(
        `resume run ${run}: startup ${ms(r.startupMs, 0)}, B resumed ${ms(r.resumedMs, 0)}, B done ${ms(r.bCompletedMs, 0)}, C done ${ms(r.cCompletedMs, 0)}`,
      );
      resume.push(r);
    }

    const section = report(machine, date, bundle.ms, overhead, resume, warnings);
    process.stdout.write(`${section}\n`);
    writeBenchmarks(section);
    log(`wrote ${benchmarksFile}`);

    if (SKIP_DUAL_WRITE) log('3. dual-write detection: skipped (BENCH_SKIP_DUAL_WRITE=1)');
    else {
      log('3. dual-write detection (1M objects per case; about six to seven minutes)');
      const dualWrite = await runDualWriteBench({
        temporalAddress: server.address,
        log: (message) => log(`dual-write: ${message}`),
      });
      process.stdout.write(`\n${dualWrite}\n`);
      writeDualWriteSection(benchmarksFile, dualWrite, END_MARK);
      log(`wrote the dual-write section of ${benchmarksFile}`);
    }
    ok = true;
  } finally {
    await cleanup();
    if (ok) rmSync(root, { recursive: true, force: true });
    else log(`logs kept in ${root}`);
  }
}

const watchdog = setTimeout(() => {
  console.error(`bench: not done after ${BUDGET_MS / 60_000} minutes, stopping`);
  void cleanup().finally(() => process.exit(1));
}, BUDGET_MS);
watchdog.unref();

main().then(
  () => {
    clearTimeout(watchdog);
    process.exit(0);
  },
  (err: unknown) => {
    console.error(err);
    void cleanup().finally(() => process.exit(1));
  },
);
