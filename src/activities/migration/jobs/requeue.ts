import { Context } from '@temporalio/activity';
import type { RequeueOutcome } from '../types.js';
import { jobTarget, type JobActivityDeps, type TargetRef } from './context.js';
import { JOB_STATES } from './errors.js';
import { readPlanFile } from './plan-file.js';
import { replayTag } from './spool-names.js';

export interface BatchInput extends TargetRef {
  plan: { path: string; sha256: string };
  /** plan lines [from, to) */
  from: number;
  to: number;
  /** `<workflowId>/<first run id>`: a job's key is `<keyPrefix>/<job id>` */
  keyPrefix: string;
}

export type ReplayCounts = Record<RequeueOutcome, number>;

export interface BatchResult extends ReplayCounts {
  /** jobs gone between detection and replay, and jobs someone else moved (reported, not fatal) */
  vanishedIds: string[];
  movedIds: string[];
}

interface BatchCursor {
  from: number;
  to: number;
  next: number;
  result: BatchResult;
}

export const emptyBatch = (): BatchResult => ({
  requeued: 0,
  already: 0,
  vanished: 0,
  moved: 0,
  vanishedIds: [],
  movedIds: [],
});

/**
 * Requeues plan lines [from, to) with the run's key through the source's `requeueMany`, heartbeating after each of
 * its groups (final and durable when reported); a retry resumes after the last group it heartbeated (and a job
 * requeued after that is `already`: the key is checked in every state).
 */
export async function requeueBatch(deps: JobActivityDeps, input: BatchInput): Promise<BatchResult> {
  const ctx = Context.current();
  const { source } = await jobTarget(deps, input);
  const entries = await readPlanFile(input.plan);
  const prior = ctx.info.heartbeatDetails as Partial<BatchCursor> | undefined;
  const cursor: BatchCursor =
    prior && prior.from === input.from && prior.to === input.to && typeof prior.next === 'number' && prior.result
      ? (prior as BatchCursor)
      : { from: input.from, to: input.to, next: input.from, result: emptyBatch() };
  // the cursor advances over whole groups, each final and durable when the source reports it
  const rest = entries.slice(cursor.next, Math.min(input.to, entries.length));
  await source.requeueMany(
    rest.map((e) => ({
      id: e.id,
      from: e.from,
      key: `${input.keyPrefix}/${e.id}`,
      ...(e.name ? { name: e.name } : {}),
    })),
    (outcomes) => {
      outcomes.forEach((outcome, i) => {
        const id = entries[cursor.next + i]!.id;
        cursor.result[outcome] += 1;
        if (outcome === 'vanished') cursor.result.vanishedIds.push(id);
        if (outcome === 'moved') cursor.result.movedIds.push(id);
      });
      cursor.next += outcomes.length;
      ctx.heartbeat(cursor);
    },
  );
  return cursor.result;
}

export interface DrainInput extends TargetRef {
  plan: { path: string; sha256: string };
  keyPrefix: string;
  /** ms since epoch: stop waiting then (fixed by the workflow, so a retry does not extend it) */
  until: number;
  /** ms between looks */
  every?: number;
}

export interface DrainResult {
  drained: boolean;
  /** the replayed jobs (carrying this run's key) by their state now */
  completed: number;
  failed: number;
  pending: number;
  /** planned jobs without this run's key (vanished, moved) */
  notReplayed: number;
  failedSample: string[];
}

/**
 * Waits (heartbeating) until no job of the plan is queued or processing any more, or `until`; then counts the
 * replayed jobs (those carrying this run's key) by their state.
 */
export async function awaitReplayed(deps: JobActivityDeps, input: DrainInput): Promise<DrainResult> {
  const ctx = Context.current();
  const { source } = await jobTarget(deps, input);
  const entries = await readPlanFile(input.plan);
  const planned = new Set(entries.map((e) => e.id));
  let drained = false;
  for (;;) {
    let active = 0;
    for (let afterId: string | undefined; ;) {
      const page = await source.list(['queue', 'processing'], { afterId, limit: 5000 });
      if (page.length === 0) break;
      for (const r of page) if (planned.has(r.id)) active += 1;
      afterId = page[page.length - 1]!.id;
    }
    ctx.heartbeat({ active });
    if (active === 0) {
      drained = true;
      break;
    }
    if (Date.now() >= input.until) break;
    await new Promise((r) => setTimeout(r, Math.min(input.every ?? 1000, Math.max(0, input.until - Date.now()))));
  }
  const result: DrainResult = { drained, completed: 0, failed: 0, pending: 0, notReplayed: 0, failedSample: [] };
  // every job's record, once (its first file in the processor's order), page by page: no lookup per planned job
  const counted = new Set<string>();
  let pages = 0;
  for (let afterId: string | undefined; ;) {
    const page = await source.list([...JOB_STATES], { afterId, limit: 5000 });
    if (page.length === 0) break;
    for (const job of page) {
      if (!planned.has(job.id) || counted.has(job.id)) continue;
      if (job.replayTag !== replayTag(`${input.keyPrefix}/${job.id}`)) continue;
      counted.add(job.id);
      if (job.state === 'completed') result.completed += 1;
      else if (job.state === 'failed') {
        result.failed += 1;
        if (result.failedSample.length < 20) result.failedSample.push(job.id);
      } else result.pending += 1;
    }
    afterId = page[page.length - 1]!.id;
    ctx.heartbeat({ counted: ++pages });
  }
  result.notReplayed = planned.size - counted.size;
  return result;
}
