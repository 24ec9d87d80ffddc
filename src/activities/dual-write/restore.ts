import { Context } from '@temporalio/activity';
import { parseDuration } from '../../shared/duration.js';
import { keyString, sameMeta } from '../stores/fingerprint.js';
import { sha256 } from '../digest.js';
import { resumeCursor, type DualWriteContext, type LineCursor, type Stores } from './context.js';
import type { DualWriteRef, FileRef, Side, SnapshotEntry } from './types.js';
import { pagesOf, readLines, type WorkStore } from './work-store/index.js';

type RestorePhase = 'restore' | 'verify';
const PHASES: readonly RestorePhase[] = ['restore', 'verify'];
/** manifest entries compared per verification page */
const VERIFY_PAGE = 500;

export interface RestoreResult {
  /** manifest entries restored, by this attempt or (before resumedAt) an earlier one */
  restored: number;
  verified: number;
  /** where this attempt took over from an earlier one's heartbeat */
  resumedAt?: LineCursor<RestorePhase>;
}

/**
 * The undo of snapshot + execute: puts back every snapshotted object and removes what did not exist, in batches
 * of the target's batchSize (its batchPause after each), then verifies page by page that every entry is
 * byte-identical to its snapshot. Each batch and page heartbeats `{ phase, line }` and a retry resumes there, so
 * a restore of any size lives within the heartbeat timeout and never starts over. An entry found different in
 * verification (a writer got in between) is restored once more and checked again before the run fails.
 */
export async function restoreSnapshot(
  c: DualWriteContext,
  ref: DualWriteRef & { snapshot: FileRef },
): Promise<RestoreResult> {
  const target = await c.target(ref);
  const { dw } = target;
  const work = c.work(target, ref.runKey);
  const ctx = Context.current();
  const resumedAt = resumeCursor(PHASES);
  const pauseMs = parseDuration(dw.batchPause);
  return c.withStores(target, { readOnly: false }, async (stores) => {
    const put = (entries: SnapshotEntry[]) => putBack(stores, work, entries, dw.labels);
    let restored = resumedAt?.phase === 'restore' ? resumedAt.line : 0;
    if (resumedAt?.phase !== 'verify') {
      const manifest = await readLines<SnapshotEntry>(work, ref.snapshot);
      for await (const [line, batch] of pagesOf(manifest, dw.batchSize, restored)) {
        await put(batch);
        restored = line + batch.length;
        if (pauseMs) await ctx.sleep(pauseMs);
        ctx.heartbeat({ phase: 'restore', line: restored } satisfies LineCursor<RestorePhase>);
      }
    }
    let verified = resumedAt?.phase === 'verify' ? resumedAt.line : 0;
    const manifest = await readLines<SnapshotEntry>(work, ref.snapshot);
    for await (const [line, page] of pagesOf(manifest, VERIFY_PAGE, verified)) {
      const wrong = await differing(stores, page);
      if (wrong.length) {
        await put(wrong);
        const still = await differing(stores, wrong);
        if (still.length)
          throw new Error(
            `${still
              .slice(0, 20)
              .map((e) => `${keyString(e)} on ${dw.labels[e.side]}`)
              .join(', ')} not byte-identical to the pre-run snapshot after restore`,
          );
      }
      verified = line + page.length;
      ctx.heartbeat({ phase: 'verify', line: verified } satisfies LineCursor<RestorePhase>);
    }
    if (resumedAt?.phase === 'verify') restored = verified;
    c.log.info({ target: `${ref.environment}/${ref.target}`, restored, verified, resumedAt }, 'snapshot restored');
    return { restored, verified, ...(resumedAt ? { resumedAt } : {}) };
  });
}

/** Puts the entries back as the snapshot has them, side by side: one batch put and one batch delete each. */
async function putBack(
  stores: Stores,
  work: WorkStore,
  entries: SnapshotEntry[],
  labels: Record<Side, string>,
): Promise<void> {
  for (const side of ['a', 'b'] as const) {
    const mine = entries.filter((e) => e.side === side);
    const existed = mine.filter((e) => e.existed && e.meta);
    const absent = mine.filter((e) => !(e.existed && e.meta));
    if (existed.length) {
      const blobs = await work.getBlobs(
        existed.map((e) => ({
          sha256: e.meta!.sha256,
          size: e.meta!.size,
          what: `${keyString(e)} on ${labels[side]}`,
        })),
      );
      await stores[side].put(existed.map((e) => ({ ...e.meta!, content: blobs.get(e.meta!.sha256)! })));
    }
    if (absent.length) await stores[side].delete(absent);
  }
}

/** The entries whose object is not as the snapshot recorded it (metadata and content digest, or absence). */
async function differing(stores: Stores, entries: SnapshotEntry[]): Promise<SnapshotEntry[]> {
  const wrong: SnapshotEntry[] = [];
  for (const side of ['a', 'b'] as const) {
    const mine = entries.filter((e) => e.side === side);
    if (mine.length === 0) continue;
    const now = new Map((await stores[side].get(mine)).map((o) => [keyString(o), o]));
    for (const e of mine) {
      const o = now.get(keyString(e));
      const same = e.existed && e.meta ? o && sameMeta(o, e.meta) && sha256(o.content) === e.meta.sha256 : !o;
      if (!same) wrong.push(e);
    }
  }
  return wrong;
}
