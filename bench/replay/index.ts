/**
 * Section 6 of `npm run bench`: the `job-replay` runbook on 10,000 failed jobs of the demo processor's spool
 * (BENCH_SMOKE=1: 1,000), unpaced (environment pace 0s, batches of 2,500, 4 in flight), on a worker child process:
 * (a) requeue throughput with the processor stopped, against a direct loop that requeues the same files
 * (direct.ts, the baseline, in the same run); (b) the same replay with the processor working the queue and the
 * worker SIGKILLed three times while it requeues: duplicates counted in the processor's own log.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { JOB_STATES } from '../../src/activities/migration/jobs/errors.js';
import { parseSpoolName } from '../../src/activities/migration/jobs/spool-names.js';
import { writeSpoolJobs } from '../../src/demo/jobs-seed.js';
import { approveSignal, statusQuery } from '../../src/shared/messages.js';
import type { RunbookResult } from '../../src/shared/types.js';
import { bundleWorkflows } from '../../src/worker/worker.js';
import { sigkill, startChildWorker, type ChildWorker } from '../../test/support/child-worker.js';
import { Harness } from '../../test/support/harness.js';
import { startReplay } from '../../test/support/job-replay.js';
import { jobTarget, type JobTestTarget } from '../../test/support/migration.js';
import { until, waitForStatus } from '../../test/support/wait.js';
import { runDate } from '../support/machine.js';
import type { Resources } from '../support/resources.js';
import { benchHarness, devServerAddress } from '../support/dev-server.js';
import { checkedDirectRequeue, directRequeue, durableDirectRequeue, seedScriptRequeue } from './direct.js';
import { sourceRequeueInWorkerPool } from './source-child.js';
import { replayReport, type ReplayBenchResult, type ThroughputRuns, type TimedReplay } from './report.js';
import {
  KILL_AT,
  PROCESSOR,
  REPLAY_JOBS,
  REPLAY_SETTINGS,
  ROUNDS,
  RUN_BUDGET_MS,
  SEED_SCRIPT_JOBS,
} from './settings.js';

export interface ReplayBenchOptions {
  resources: Resources;
  /** bench/run.ts's dev server; without it the section starts one of its own */
  temporalAddress?: string;
  log?: (message: string) => void;
}

/** jobs of the spool whose file carries a replay tag (spool-names.ts), in any state: how many the run has requeued */
function taggedJobs(root: string): number {
  let n = 0;
  for (const state of JOB_STATES) {
    const dir = join(root, 'jobs', state);
    if (existsSync(dir)) for (const name of readdirSync(dir)) if (parseSpoolName(name)?.tag) n += 1;
  }
  return n;
}

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

    // (a) throughput, the processor stopped (only the requeueing runs): ROUNDS rounds of the runbook, the direct
    // loop, the durable and the checked direct loops and the job source alone, each on a spool of its own seeded
    // just before it, in an order rotated each round. No spool is removed before the section ends, and every
    // directory a timed run puts files in exists before its jobs are seeded: on this VM's ext4, creating files right
    // after many were removed, or in a directory made after the 10,000 seeds (whose inodes the run frees), is several
    // times slower (BENCHMARKS.md says why), whichever loop it hits.
    log(`(a) ${REPLAY_JOBS} failed jobs, the processor stopped: ${ROUNDS} rounds of the runbook and the loops`);
    let worker = await startWorker();
    const runs: ThroughputRuns = { runbook: [], direct: [], durable: [], checked: [], source: [] };
    const fresh = (name: string) => {
      const dir = join(root, name);
      for (const s of ['queue', 'failed']) mkdirSync(join(dir, 'jobs', s), { recursive: true });
      writeSpoolJobs(dir, idsOf(REPLAY_JOBS, 'a'), 'failed', { at: new Date(Date.now() - 3600_000) });
      return dir;
    };
    const measures: Record<keyof ThroughputRuns, (round: number) => Promise<void>> = {
      runbook: async () => {
        const a = await jobTarget(h, { start: false, replay: { ...REPLAY_SETTINGS, drainTimeout: '1s' } });
        mkdirSync(join(a.root, 'jobs', 'queue'), { recursive: true });
        await a.seedJobs(REPLAY_JOBS, 'failed', { prefix: 'a' });
        runs.runbook.push(await timedReplay(h, a, () => undefined));
      },
      direct: async (i) => void runs.direct.push(directRequeue(fresh(`direct-${i}`), `direct-${i}`)),
      checked: async (i) => void runs.checked.push(checkedDirectRequeue(fresh(`checked-${i}`), `checked-${i}`)),
      durable: async (i) => void runs.durable.push(await durableDirectRequeue(fresh(`durable-${i}`), `durable-${i}`)),
      source: async (i) =>
        void runs.source.push(sourceRequeueInWorkerPool(fresh(`source-${i}`), `source-${i}`, REPLAY_SETTINGS)),
    };
    const order = Object.keys(measures) as Array<keyof ThroughputRuns>;
    for (let i = 0; i < ROUNDS; i++)
      for (let k = 0; k < order.length; k++) await measures[order[(k + i) % order.length]!](i);
    const seedDir = join(root, 'seed-script');
    mkdirSync(join(seedDir, 'jobs', 'queue'), { recursive: true });
    writeSpoolJobs(seedDir, idsOf(SEED_SCRIPT_JOBS, 's'), 'failed');
    const seedScript = seedScriptRequeue(seedDir);

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
        // the renames themselves, not the run's published progress: a batch of 2,500 reports only per group of 250,
        // and the whole step takes about a second
        const target = Math.max(share * REPLAY_JOBS, (kills.at(-1)?.requeued ?? -1) + 1);
        const seen = await until(
          `${target} jobs requeued`,
          () => {
            const n = taggedJobs(b.root);
            return n >= target ? n : undefined;
          },
          RUN_BUDGET_MS,
          2,
        );
        const s = await handle.query(statusQuery);
        if (s.outcome || seen >= REPLAY_JOBS) break;
        await sigkill(worker.child);
        kills.push({ at: share, requeued: seen });
        worker = await startWorker();
      }
    });
    const completions = b.completions();
    const result: ReplayBenchResult = {
      date,
      jobs: REPLAY_JOBS,
      throughput: runs,
      seedScript,
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
  for (const [i, run] of r.throughput.runbook.entries())
    if (run.replay.requeued !== r.jobs)
      problems.push(`(a) round ${i + 1}: requeued ${run.replay.requeued} of ${r.jobs}`);
  if (r.duplicates > 0) problems.push(`${r.duplicates} duplicates`);
  if (r.kills.length < KILL_AT.length)
    problems.push(`(b): ${r.kills.length} SIGKILLs during the requeueing, not ${KILL_AT.length}`);
  if (r.neverProcessed > 0) problems.push(`${r.neverProcessed} jobs never processed`);
  return problems;
}
