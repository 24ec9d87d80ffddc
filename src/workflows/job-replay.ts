import {
  ActivityFailure,
  ApplicationFailure,
  executeChild,
  getExternalWorkflowHandle,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import { ErrorType } from '../shared/constants.js';
import { countsLine } from '../shared/counts.js';
import type { DrainResult, JobActivities, ReplayPlan } from '../activities/migration/jobs/activities.js';
import { parseDuration } from '../shared/duration.js';
import { invalidInput, lengthenDuration, parseRunbookInput, tightenApproval, tightenLimit } from '../shared/input.js';
import { pauseSignal, replayProgressSignal, resumeSignal, type ReplayProgress } from '../shared/messages.js';
import { jobReplayInputSchema, type JobReplayInput } from '../shared/schemas.js';
import type { RunbookResult } from '../shared/types.js';
import { runbookActivities } from './engine/activity-options.js';
import { Runbook } from './engine/runbook.js';
import { emptyProgress, jobReplayRequeue } from './job-replay-requeue.js';
import { applyOverride, readPrimary } from './job-replay-override.js';

const acts = runbookActivities<JobActivities>('quick');
const long = runbookActivities<JobActivities>('long');

/** batches per continue-as-new generation of the requeue child (about ten history events each) */
export const BATCHES_PER_GENERATION = 100;

export const JOB_REPLAY_STEPS = [
  'load environment',
  'detect jobs',
  'seal plan',
  'approval',
  'override backend',
  'restart services',
  'verify healthy',
  'requeue jobs',
  'wait for replayed jobs',
  'restore backend',
] as const;

/** A job that is not JSON, found by detection: the run's failure is InvalidInput (nothing was changed). */
async function asInvalidInput<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    const cause = err instanceof ActivityFailure ? err.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type === ErrorType.InvalidInput)
      throw ApplicationFailure.nonRetryable(cause.message, ErrorType.InvalidInput);
    throw err;
  }
}

const kindsLine = (p: ReplayPlan): string => countsLine(p.counts);

/**
 * Missed-job replay (seed "Missed Job Replay Procedures"): load → detect failed / stuck / incomplete / gap jobs (or
 * the jobs the input names) → plan (the list as a file named by its digest; counts and a sample in history) →
 * approval → optional backend override (undo registered before it acts: the previous value back, restart, healthy)
 * → requeue in a child workflow, in batches, paced by durable timers, pause/resume → wait for the replayed jobs to
 * finish (drainTimeout) → restore the override. Exactly once: every job carries the key
 * `<workflowId>/<first run id>/<job id>` into the queue atomically; a job that carries it in any state is not
 * requeued again whatever crashes. A job gone since detection is reported, not fatal.
 */
export async function jobReplay(rawInput: JobReplayInput): Promise<RunbookResult> {
  const input = parseRunbookInput(jobReplayInputSchema, rawInput);
  const ref = { environment: input.environment, target: input.target };
  const info = workflowInfo();
  const keyPrefix = `${info.workflowId}/${info.firstExecutionRunId}`;
  const childId = `${info.workflowId}--requeue`;
  const rb = new Runbook({
    runbook: 'job-replay',
    ...ref,
    requester: input.requester,
    reason: input.reason,
    dryRun: input.dryRun,
    steps: JOB_REPLAY_STEPS,
    lockWait: input.lockWait,
  });

  let plan: ReplayPlan | undefined;
  let progress: ReplayProgress = emptyProgress();
  let paused = false;
  let childStarted = false;
  let childDone = false;
  let drain: DrainResult | undefined;
  let override: { restore(): Promise<void> } | undefined;
  const publish = () =>
    rb.publish('replay', {
      requeued: progress.requeued,
      already: progress.already,
      vanished: progress.vanished,
      moved: progress.moved,
      remaining: Math.max(0, (plan?.total ?? 0) - progress.done),
      paused,
      ...(progress.vanishedIds.length ? { vanishedIds: progress.vanishedIds } : {}),
      ...(progress.movedIds.length ? { movedIds: progress.movedIds } : {}),
    });
  /** tells the requeue child the current pause state; a child still starting gets it a moment later */
  const toChild = async () => {
    for (let attempt = 0; childStarted && !childDone && attempt < 10; attempt++) {
      try {
        await getExternalWorkflowHandle(childId).signal(paused ? pauseSignal : resumeSignal);
        return;
      } catch {
        await sleep(1000);
      }
    }
  };
  setHandler(pauseSignal, async () => {
    paused = true;
    publish();
    await toChild();
  });
  setHandler(resumeSignal, async () => {
    paused = false;
    publish();
    await toChild();
  });
  setHandler(replayProgressSignal, (p) => {
    if (p.done >= progress.done) progress = p;
    publish();
  });

  return rb.run(
    async () => {
      const target = await rb.step(
        'load environment',
        async () => {
          const t = await acts.describeJobReplay(ref);
          // the override's "from": read before anything is planned
          const current = input.backend === undefined ? undefined : await readPrimary(ref, t.primaryKey);
          return { ...t, current };
        },
        {
          summarize: (t) =>
            `${t.source}; backends ${t.backends.old} → ${t.backends.new}${t.current !== undefined ? `; ${t.primaryKey} = ${t.current ?? '(unset)'}` : ''}`,
        },
      );
      rb.usePolicy(tightenApproval(target.approval, input.approval), target.escalation);
      const r = target.replay;
      const batch = tightenLimit('batch', r.batch, input.batch);
      const concurrency = tightenLimit('concurrency', r.concurrency, input.concurrency);
      const pace = lengthenDuration('pace', r.pace, input.pace);
      const stuckAfter = lengthenDuration('stuckAfter', r.stuckAfter, input.stuckAfter);
      const known = [target.backends.old, target.backends.new];
      if (input.backend !== undefined && !known.includes(input.backend))
        throw invalidInput(`backend: "${input.backend}" is not a backend of this target (${known.join(', ')})`);
      const current = target.current ?? null;
      const ov = input.backend;

      plan = await rb.step(
        'detect jobs',
        () =>
          asInvalidInput(
            long.detectReplayJobs({
              ...ref,
              runKey: keyPrefix,
              kinds: input.kinds,
              since: input.since,
              stuckAfter,
              limit: input.limit,
              jobs: input.jobs,
              dryRun: input.dryRun,
            }),
          ),
        {
          summarize: (p) =>
            `${p.total} jobs (${kindsLine(p)})${p.missing.count ? `; ${p.missing.count} named but missing` : ''}${p.active.count ? `; ${p.active.count} queued or processing now` : ''}; plan sha256 ${p.sha256.slice(0, 12)}`,
        },
      );
      publish();
      const p = plan;
      await rb.approval(
        {
          summary:
            `requeue ${p.total} jobs of ${target.source} (${kindsLine(p)}) exactly once, ${batch} per batch, ` +
            `${concurrency} in flight, ${pace} between batches` +
            (ov !== undefined
              ? `, with ${target.primaryKey} = ${ov} (now ${current ?? 'unset'}; restored afterwards)`
              : ''),
          changes: [
            {
              item: `${p.total} jobs`,
              from: Object.keys(p.counts).length ? 'failed / processing / completed' : '-',
              to: `queue, each with replay key ${keyPrefix}/<job id>`,
            },
            ...(ov !== undefined ? [{ item: target.primaryKey, from: current ?? '(unset)', to: ov }] : []),
          ],
          details: {
            planFile: { path: p.path, sha256: p.sha256, total: p.total },
            counts: p.counts,
            sample: p.sample,
            missing: p.missing,
            active: p.active,
            since: p.since,
            stuckBefore: p.stuckBefore,
            truncated: p.truncated,
            keyPrefix,
            pacing: { batch, concurrency, pace },
            reason: input.reason,
          },
        },
        // started by output-recovery: its approved plan covers exactly this input (engine: parent-cover.ts)
        { childInput: rawInput },
      );

      if (ov !== undefined && current !== ov) {
        override = await applyOverride(rb, ref, target.primaryKey, current, ov);
      } else {
        const why = ov ? `${target.primaryKey} is already ${input.backend}` : 'no backend override';
        for (const s of ['override backend', 'restart services', 'verify healthy'] as const) rb.skip(s, why);
      }

      if (p.total > 0) {
        await rb.step(
          'requeue jobs',
          async () => {
            childStarted = true;
            const totals = await executeChild(jobReplayRequeue, {
              workflowId: childId,
              args: [
                {
                  ref,
                  plan: { path: p.path!, sha256: p.sha256, total: p.total },
                  keyPrefix,
                  parentWorkflowId: info.workflowId,
                  from: 0,
                  batch,
                  concurrency,
                  paceMs: parseDuration(pace),
                  batchesPerGeneration: BATCHES_PER_GENERATION,
                  paused,
                },
              ],
            }).finally(() => (childDone = true));
            progress = totals;
            publish();
            return totals;
          },
          {
            summarize: (t) =>
              `requeued ${t.requeued}, already ${t.already}, vanished ${t.vanished}, moved ${t.moved} (${t.generation} generation${t.generation === 1 ? '' : 's'})`,
          },
        );
        const drainMs = parseDuration(r.drainTimeout);
        const waiter = runbookActivities<JobActivities>('long', { startToCloseTimeout: drainMs + 10 * 60_000 });
        drain = await rb.step(
          'wait for replayed jobs',
          () =>
            waiter.awaitReplayedJobs({
              ...ref,
              plan: { path: p.path!, sha256: p.sha256 },
              keyPrefix,
              until: Date.now() + drainMs,
            }),
          {
            summarize: (d) =>
              `${d.drained ? 'all finished' : `not finished within ${r.drainTimeout}`}: completed ${d.completed}, failed ${d.failed}, still pending ${d.pending}`,
          },
        );
        rb.publish('drain', drain);
      } else {
        rb.skip('requeue jobs', 'nothing to replay');
        rb.skip('wait for replayed jobs', 'nothing to replay');
      }

      if (override) await override.restore();
      else rb.skip('restore backend', 'no backend override');
    },
    () => ({
      plan: plan && {
        path: plan.path,
        sha256: plan.sha256,
        total: plan.total,
        counts: plan.counts,
        missing: plan.missing,
        active: plan.active,
      },
      replay: {
        requeued: progress.requeued,
        already: progress.already,
        vanished: progress.vanished,
        moved: progress.moved,
        vanishedIds: progress.vanishedIds,
        movedIds: progress.movedIds,
        generations: progress.generation,
      },
      drain,
      keyPrefix,
    }),
  );
}
