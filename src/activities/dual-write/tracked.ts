import { classify, type DriftEntry } from '../stores/diff.js';
import { compareKeys, keyString } from '../stores/fingerprint.js';
import type { ObjectKey, ObjectMeta, ObjectStoreAdapter } from '../stores/types.js';
import { UNKNOWN, type CheckSegment, type IncrementalStats } from './incremental.js';
import type { Side } from './types.js';

/** Where a side's change tracking was read up to, and which installation it was. */
export interface SideMark {
  identity: string;
  mark: string;
}
export type TrackingMarks = Record<Side, SideMark>;

/**
 * What both sides' change tracking says since the stored marks: the keys to compare again, or why they cannot be
 * trusted (then everything is read). `marks` (taken before anything else is read) are stored for the next check
 * whenever tracking is intact on both sides, even when this check reads everything.
 */
export type TrackedChanges =
  { ok: true; keys: ObjectKey[]; marks: TrackingMarks } | { ok: false; why: string; marks?: TrackingMarks };

/**
 * Reads both sides' marks since `previous` (the marks the last check stored), at most `limit` keys per side. Not
 * usable — with the reason — when a side has no tracking or it is not intact (not installed, a trigger missing,
 * disabled or changed, the changes table emptied), when it was installed again since (another identity), when
 * there is no stored mark yet, or when a side cannot list its keys (too many, a TRUNCATE, marks pruned).
 */
export async function readChanges(
  stores: Record<Side, ObjectStoreAdapter>,
  labels: Record<Side, string>,
  previous: TrackingMarks | undefined,
  limit: number,
): Promise<TrackedChanges> {
  const sides: Side[] = ['a', 'b'];
  const name = (s: Side) => `side ${s} (${labels[s]})`;
  for (const s of sides)
    if (!stores[s].tracking) return { ok: false, why: `${name(s)}: ${stores[s].describe()} cannot track changes` };
  const sets = await Promise.all(sides.map((s) => stores[s].tracking!.changes(previous?.[s].mark, limit)));
  for (const [i, s] of sides.entries())
    if (!sets[i]!.status.intact) return { ok: false, why: `${name(s)}: ${sets[i]!.status.why}` };
  const marks = Object.fromEntries(
    sides.map((s, i) => [s, { identity: sets[i]!.status.identity!, mark: sets[i]!.mark }]),
  ) as TrackingMarks;
  if (!previous) return { ok: false, why: 'no change mark stored yet (the first check with tracking)', marks };
  for (const [i, s] of sides.entries()) {
    if (previous[s].identity !== marks[s].identity)
      return { ok: false, why: `${name(s)}: change tracking was installed again since the last check`, marks };
    if (sets[i]!.overflow) return { ok: false, why: `${name(s)}: ${sets[i]!.overflow}`, marks };
  }
  const keys = new Map<string, ObjectKey>();
  for (const set of sets)
    for (const k of set.keys!) keys.set(keyString(k), { objectId: k.objectId, version: k.version });
  return { ok: true, keys: [...keys.values()].sort(compareKeys), marks };
}

/** Index of the segment whose range holds `key` (segments end at `to`, exclusive; the last one is open). */
function segmentOf(segments: CheckSegment[], key: ObjectKey): number {
  let lo = 0;
  let hi = segments.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareKeys(key, segments[mid]!.to!) < 0) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * The re-check with change tracking: only `keys` (what either side's tracking marked changed since the last
 * check) are read, by key, on both sides (`batch` keys per call) and classified; every other key's classification
 * is the stored one, since neither side wrote it. A segment holding a changed key gets its differences for those
 * keys replaced, and unknown summaries (so that a later pass over the summaries compares it again); every other
 * segment is kept as stored.
 */
export async function recheckKeys(
  a: ObjectStoreAdapter,
  b: ObjectStoreAdapter,
  previous: CheckSegment[],
  keys: ObjectKey[],
  options: { batch?: number; onProgress?: (keysRead: number) => void } = {},
): Promise<{ segments: CheckSegment[]; stats: IncrementalStats }> {
  const batch = options.batch ?? 1000;
  const fresh = new Map<string, DriftEntry>();
  let [foundA, foundB] = [0, 0];
  for (let i = 0; i < keys.length; i += batch) {
    const part = keys.slice(i, i + batch);
    const [ma, mb] = await Promise.all([a.getMeta(part), b.getMeta(part)]);
    foundA += ma.length;
    foundB += mb.length;
    const byKey = (ms: ObjectMeta[]) => new Map(ms.map((m) => [keyString(m), m]));
    const [xa, xb] = [byKey(ma), byKey(mb)];
    for (const k of part) {
      const [left, right] = [xa.get(keyString(k)), xb.get(keyString(k))];
      const cls = classify(left, right);
      if (cls) fresh.set(keyString(k), { objectId: k.objectId, version: k.version, class: cls, a: left, b: right });
    }
    options.onProgress?.(i + part.length);
  }
  const touched = new Map<number, ObjectKey[]>();
  for (const k of keys) {
    const i = segmentOf(previous, k);
    const list = touched.get(i);
    if (list) list.push(k);
    else touched.set(i, [k]);
  }
  const segments = previous.slice();
  for (const [i, changed] of touched) {
    const s = previous[i]!;
    const gone = new Set(changed.map(keyString));
    const drift = s.drift.filter((e) => !gone.has(keyString(e)));
    for (const k of changed) {
      const e = fresh.get(keyString(k));
      if (e) drift.push(e);
    }
    drift.sort(compareKeys);
    segments[i] = { ...(s.to ? { to: s.to } : {}), a: UNKNOWN, b: UNKNOWN, drift };
  }
  const stats: IncrementalStats = {
    segments: segments.length,
    changed: touched.size,
    compared: 0,
    reused: segments.length - touched.size,
    rowsA: 0,
    rowsB: 0,
    scannedA: foundA,
    scannedB: foundB,
    keys: keys.length,
  };
  return { segments, stats };
}
