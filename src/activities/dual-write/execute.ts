import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { ErrorType } from '../../shared/constants.js';
import { parseDuration } from '../../shared/duration.js';
import { sha256 } from '../digest.js';
import { keyString } from '../stores/fingerprint.js';
import type { DualWriteContext, Stores } from './context.js';
import type { DualWriteRef, FileRef, RepairAction, Side } from './types.js';
import { readLines } from './work-store/index.js';

export interface ExecuteInput extends DualWriteRef {
  plan: FileRef;
  batchSize: number;
  parallelism: number;
  /** plan lines [from, to), default all */
  lines?: { from: number; to: number };
}

export interface ExecuteResult {
  batches: number;
  /** objects of the range applied, by this attempt or (batches before resumedAt) an earlier one */
  applied: number;
  /** objects this attempt applied */
  appliedNow: number;
  resumedAt: number;
}

/**
 * Applies the plan in batches (idempotent upserts and deletes). The heartbeat carries the next batch, so a
 * retry after a worker crash resumes after the last finished batch.
 */
export async function executeRepair(c: DualWriteContext, ref: ExecuteInput): Promise<ExecuteResult> {
  const target = await c.target(ref);
  const { dw } = target;
  const work = c.work(target, ref.runKey);
  const plan = await readLines<RepairAction>(work, ref.plan);
  const ctx = Context.current();
  const pauseMs = parseDuration(dw.batchPause);
  const resumedAt = (ctx.info.heartbeatDetails as { nextBatch?: number } | undefined)?.nextBatch ?? 0;
  return c.withStores(target, { readOnly: false }, async (stores) => {
    const done = new Set<number>();
    let nextBatch = resumedAt;
    let batchIndex = 0;
    let applied = 0;
    let appliedNow = 0;
    const applyBatch = async (index: number, batch: RepairAction[]) => {
      // cancellation (abort, workflow cancel) arrives with a heartbeat: stop between batches
      if (ctx.cancellationSignal.aborted) throw new CancelledFailure('repair cancelled between batches');
      for (const to of ['a', 'b'] as const) await applyTo(stores, to, batch, dw.labels);
      if (pauseMs) await ctx.sleep(pauseMs);
      applied += batch.length;
      appliedNow += batch.length;
      done.add(index);
      while (done.has(nextBatch)) nextBatch++;
      ctx.heartbeat({ nextBatch });
    };
    const inflight = new Set<Promise<void>>();
    let batch: RepairAction[] = [];
    const submit = async () => {
      const index = batchIndex++;
      const current = batch;
      batch = [];
      // applied by an earlier attempt (its heartbeat says so): counted, not redone
      if (index < resumedAt) {
        applied += current.length;
        return;
      }
      const p = applyBatch(index, current).finally(() => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= ref.parallelism) await Promise.race(inflight);
    };
    let line = 0;
    for await (const action of plan) {
      const inside = !ref.lines || (line >= ref.lines.from && line < ref.lines.to);
      line++;
      if (!inside) continue;
      batch.push(action);
      if (batch.length >= ref.batchSize) await submit();
    }
    if (batch.length) await submit();
    await Promise.all(inflight);
    c.log.info(
      { target: `${ref.environment}/${ref.target}`, applied, appliedNow, batches: batchIndex, resumedAt },
      'repair applied',
    );
    return { batches: batchIndex, applied, appliedNow, resumedAt };
  });
}

/** The batch's copies to side `to` (checked against the plan's digests: PlanStale otherwise), then its deletes. */
async function applyTo(stores: Stores, to: Side, batch: RepairAction[], labels: Record<Side, string>): Promise<void> {
  const copies = batch.filter((x) => x.to === to && x.action === 'copy');
  const deletes = batch.filter((x) => x.to === to && x.action === 'delete');
  if (copies.length) {
    const from = to === 'a' ? 'b' : 'a';
    const objects = await stores[from].get(copies);
    const byKey = new Map(objects.map((o) => [keyString(o), o]));
    for (const c of copies) {
      const o = byKey.get(keyString(c));
      if (!o || o.sha256 !== c.sha256 || sha256(o.content) !== c.sha256) {
        throw ApplicationFailure.nonRetryable(
          `${keyString(c)} changed on ${labels[from]} since the plan was approved (expected sha256 ${c.sha256?.slice(0, 12)})`,
          ErrorType.PlanStale,
        );
      }
    }
    await stores[to].put(objects);
  }
  if (deletes.length) await stores[to].delete(deletes);
}
