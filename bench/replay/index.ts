/**
 * Section 6 of `npm run bench`: the `job-replay` runbook on 10,000 failed jobs of the demo processor's spool
 * (BENCH_SMOKE=1: 1,000), unpaced (environment pace 0s, batches of 500, 4 in flight), on a worker child process:
 * (a) requeue throughput with the processor stopped, against a direct loop that requeues the same files
 * (direct.ts, the baseline, in the same run); (b) the same replay with the processor working the queue and the
 * worker SIGKILLed three times while it requeues: duplicates counted in the processor's own log.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { writeSpoolJobs } from '../../src/demo/jobs-seed.js';
import { approveSignal } from '../../src/shared/messages.js';
import type { RunbookResult, RunbookStatus } from '../../src/shared/types.js';
import { bundleWorkflows } from '../../src/worker/worker.js';
import { sigkill, startChildWorker, type ChildWorker } from '../../test/support/child-worker.js';
import { Harness } from '../../test/support/harness.js';
import { startReplay } from '../../test/support/job-replay.js';
import { jobTarget, type JobTestTarget } from '../../test/support/migration.js';
import { waitForStatus } from '../../test/support/wait.js';
import { median } from '../engine/format.js';
import { runDate } from '../support/machine.js';
import type { Resources } from '../support/resources.js';
import { benchHarness, devServerAddress } from '../support/dev-server.js';
import { directRequeue, sourceRequeue } from './direct.js';
import { replayReport, type ReplayBenchResult, type TimedReplay } from './report.js';
import { BASELINE_RUNS, KILL_AT, PROCESSOR, REPLAY_JOBS, REPLAY_SETTINGS, RUN_BUDGET_MS } from './settings.js';

export interface ReplayBenchOptions {
  resources: Resources;
  /** bench/run.ts's dev server; without it the section starts one of its own */
  temporalAddress?: string;
  log?: (message: string) => void;
}

const requeuedOf = (s: RunbookStatus): number =>
  (s.results?.replay as { requeued?: number } | undefined)?.requeued ?? 0;

export async function runReplayBench(options: ReplayBenchOptions): Promise<ReplayBenchResult & { markdown: string }> {
  const log = options.log ?? ((m: string) => void process.stderr.write(`[bench:replay] ${m}\n`));
  const resources = options.resources.nested();
  const date = runDate();
  const started = Date.now();
  const loadAtStart = os.loadavg();
  const root = mkdtempSync(join(os.tmpdir(), 'durable-runbooks-replay-bench-'));
  let ok = false;
  try {
    const address = await devServerAddress(options.temporalAddress, root, resources);
    log('bundling the workflows');
    const bundlePath = join(root, 'workflow-bundle.js');
    writeFileSync(bundlePath, await bundleWorkflows());
    const h = await benchHarness(address, bundlePath, resources, { worker: false });
    const startWorker = () => startChildWorker(h, resources.children, 0, {}, { logFile: join(root, 'worker.log') });

    // (a) throughput: the processor stopped, so only the requeueing runs
    log(`(a) ${REPLAY_JOBS} failed jobs, the processor stopped: the runbook, then the direct loop`);
    const a = await jobTarget(h, { start: false, replay: { ...REPLAY_SETTINGS, drainTimeout: '1s' } });
    await a.seedJobs(REPLAY_JOBS, 'failed', { prefix: 'a' });
    let worker = await startWorker();
    const throughput = await timedReplay(h, a, () => undefined);
    const baseline = [];
    const sourceAlone = [];
    const fresh = (name: string) => {
      const dir = join(root, name);
      for (const s of ['queue', 'failed']) mkdirSync(join(dir, 'jobs', s), { recursive: true });
      writeSpoolJobs(dir, idsOf(REPLAY_JOBS, 'a'), 'failed', { at: new Date(Date.now() - 3600_000) });
      return dir;
    };
    for (let i = 0; i < BASELINE_RUNS; i++) {
      const dir = fresh(`direct-${i}`);
      baseline.push(directRequeue(dir, `direct-${i}`));
      rmSync(dir, { recursive: true, force: true });
      const other = fresh(`source-${i}`);
      sourceAlone.push(await sourceRequeue(other, `source-${i}`, REPLAY_SETTINGS));
      rmSync(other, { recursive: true, force: true });
    }

    // (b) duplicates: the processor working the queue, the worker SIGKILLed three times while requeueing
    log(`(b) ${REPLAY_JOBS} failed jobs, the processor working, the worker SIGKILLed at ${KILL_AT.join(', ')}`);
    const b = await jobTarget(h, {
      replay: { ...REPLAY_SETTINGS, drainTimeout: '10m' },
      concurrency: PROCESSOR.concurrency,
      workMs: PROCESSOR.workMs,
    });
    const ids = await b.seedJobs(REPLAY_JOBS, 'failed', { prefix: 'b' });
    const kills: Array<{ at: number; requeued: number }> = [];
    const killed = await timedReplay(h, b, async (handle) => {
      for (const share of KILL_AT) {
        const s = await waitForStatus(
          handle,
          (st) =>
            requeuedOf(st) >= Math.max(share * REPLAY_JOBS, (kills.at(-1)?.requeued ?? -1) + 1) || Boolean(st.outcome),
          RUN_BUDGET_MS,
        );
        if (s.outcome || requeuedOf(s) >= REPLAY_JOBS) break;
        await sigkill(worker.child);
        kills.push({ at: share, requeued: requeuedOf(s) });
        worker = await startWorker();
      }
    });
    const completions = b.completions();
    const result: ReplayBenchResult = {
      date,
      jobs: REPLAY_JOBS,
      throughput,
      baseline: { runs: baseline, medianMs: median(baseline.map((r) => r.ms)) },
      sourceAlone: { runs: sourceAlone, medianMs: median(sourceAlone.map((r) => r.ms)) },
      killed,
      kills,
      duplicates: b.duplicates(),
      processedTwice: ids.filter((id) => (completions.get(id) ?? 0) > 1).length,
      neverProcessed: ids.filter((id) => !completions.get(id)).length,
      counts: await b.counts(),
      workerRestarts: kills.length,
      load: { start: loadAtStart, end: os.loadavg() },
      totalMs: Date.now() - started,
    };
    void (worker satisfies ChildWorker);
    ok = true;
    return { ...result, markdown: replayReport(result) };
  } finally {
    await resources.stop();
    if (ok || process.env.KEEP_BENCH_FILES !== '1') rmSync(root, { recursive: true, force: true });
    else log(`files kept in ${root}`);
  }
}

const idsOf = (n: number, prefix: string) =>
  Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(6, '0')}`);

/** Starts a replay, approves it as soon as it waits, runs `during` meanwhile, and times its steps. */
async function timedReplay(
  h: Harness,
  t: JobTestTarget,
  during: (handle: WorkflowHandle) => Promise<void> | void,
): Promise<TimedReplay> {
  const started = performance.now();
  const handle = await startReplay(h, t, { kinds: ['failed'], reason: 'benchmark' });
  const waiting = await waitForStatus(
    handle,
    (s) => Boolean((s.approval.waiting && s.planHash) || s.outcome),
    RUN_BUDGET_MS,
  );
  if (!waiting.outcome) await handle.signal(approveSignal, { by: 'alice', planHash: waiting.planHash! });
  await during(handle);
  const result = (await Promise.race([
    handle.result(),
    new Promise((_, reject) =>
      setTimeout(() => reject(new Error(`${handle.workflowId}: over budget`)), RUN_BUDGET_MS).unref(),
    ),
  ])) as RunbookResult;
  const ms = performance.now() - started;
  if (result.outcome !== 'succeeded') throw new Error(`${handle.workflowId}: ${result.outcome}: ${result.error}`);
  const step = (name: string) => {
    const s = result.steps.find((x) => x.name === name);
    return s?.startedAt && s.endedAt ? Date.parse(s.endedAt) - Date.parse(s.startedAt) : undefined;
  };
  const extra = result.extra as { replay: TimedReplay['replay']; drain?: TimedReplay['drain'] };
  return {
    ms,
    requeueMs: step('requeue jobs')!,
    detectMs: step('detect jobs')!,
    drainMs: step('wait for replayed jobs'),
    requeueAttempts: result.steps.find((x) => x.name === 'requeue jobs')?.attempts ?? 1,
    replay: extra.replay,
    drain: extra.drain,
  };
}

/** What a smoke run must have shown. */
export function replaySmokeProblems(r: ReplayBenchResult): string[] {
  const problems: string[] = [];
  if (r.throughput.replay.requeued !== r.jobs)
    problems.push(`(a) requeued ${r.throughput.replay.requeued} of ${r.jobs}`);
  if (r.duplicates > 0) problems.push(`${r.duplicates} duplicates`);
  if (r.neverProcessed > 0) problems.push(`${r.neverProcessed} jobs never processed`);
  return problems;
}
