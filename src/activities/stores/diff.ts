import { DETECTION_DEFAULTS } from '../../shared/constants.js';
import { compareKeys, sameMeta, sameSummary } from './fingerprint.js';
import type {
  FingerprintList,
  FingerprintProbe,
  KeyRange,
  ObjectKey,
  ObjectMeta,
  ObjectStoreAdapter,
  SegmentSummary,
} from './types.js';

export const DRIFT_CLASSES = ['missing_in_a', 'missing_in_b', 'content_mismatch', 'metadata_mismatch'] as const;
export type DriftClass = (typeof DRIFT_CLASSES)[number];

export interface DriftEntry {
  objectId: string;
  version: number;
  class: DriftClass;
  a?: ObjectMeta;
  b?: ObjectMeta;
}

export interface DiffStats {
  /** rows proven equal or compared, per side */
  rowsA: number;
  rowsB: number;
  /** rows actually streamed out of each store (what crossed the wire) */
  scannedA: number;
  scannedB: number;
  /** of those, fingerprints received in fingerprint lists (bisect), and the lists' bytes (decimal text) */
  listedA: number;
  listedB: number;
  listBytesA: number;
  listBytesB: number;
  summaries: number;
  mode: 'bisect' | 'merge';
}

export interface DiffOptions {
  /** rows per page when streaming */
  pageSize?: number;
  /** rows per checksummed segment; the rows of a differing segment are compared one by one */
  segmentRows?: number;
  /** segments per round: each round is one summary statement per side, so memory stays bounded */
  windowSegments?: number;
  /** rows of segments read (as fingerprint lists) per call and side: bounds memory at dense drift */
  readRows?: number;
  /**
   * when more than this fraction of a window's segments differ, the next windows skip the checksums and compare
   * every segment's fingerprint list (the checksums would mostly say "read it"), until the drift thins out again
   */
  listAbove?: number;
  /** force the streaming merge even when both sides can checksum */
  mergeOnly?: boolean;
  onProgress?: (stats: DiffStats) => void;
}

export function classify(a: ObjectMeta | undefined, b: ObjectMeta | undefined): DriftClass | undefined {
  if (!a && !b) return undefined;
  if (!a) return 'missing_in_a';
  if (!b) return 'missing_in_b';
  if (a.sha256 !== b.sha256 || a.size !== b.size) return 'content_mismatch';
  return sameMeta(a, b) ? undefined : 'metadata_mismatch';
}

/** A pull iterator over a store's pages, one row at a time. */
class RowCursor {
  private page: ObjectMeta[] = [];
  private i = 0;
  private done = false;
  private readonly pages: AsyncIterator<ObjectMeta[]>;
  constructor(
    store: ObjectStoreAdapter,
    range: KeyRange,
    pageSize: number,
    private readonly count: (n: number) => void,
  ) {
    this.pages = store.scan(range, pageSize)[Symbol.asyncIterator]();
  }
  async peek(): Promise<ObjectMeta | undefined> {
    while (this.i >= this.page.length && !this.done) {
      const next = await this.pages.next();
      if (next.done) this.done = true;
      else {
        this.page = next.value;
        this.i = 0;
        this.count(this.page.length);
      }
    }
    return this.page[this.i];
  }
  advance(): void {
    this.i++;
  }
}

const canSegment = (s: ObjectStoreAdapter): boolean =>
  Boolean(s.summarizeRanges && s.fingerprintLists && s.metaByFingerprint);

/** number of fingerprints in a FingerprintList */
function listLength(list: FingerprintList): number {
  if (!list) return 0;
  let n = 1;
  for (let i = list.indexOf(','); i !== -1; i = list.indexOf(',', i + 1)) n++;
  return n;
}

/**
 * The fingerprints of one list that the other does not match, for both lists (as multisets). The common prefix
 * and suffix (whole fingerprints) are skipped without splitting: a segment with one differing row splits one or
 * two fingerprints per side, not all of them.
 */
export function unmatchedFingerprints(la: FingerprintList, lb: FingerprintList): [string[], string[]] {
  const n = Math.min(la.length, lb.length);
  let p = 0;
  while (p < n && la.charCodeAt(p) === lb.charCodeAt(p)) p++;
  // the fingerprint the first difference falls in starts after the last comma before it (the prefix is common)
  const start = p === 0 ? 0 : la.lastIndexOf(',', p - 1) + 1;
  const limit = n - start;
  let q = 0;
  while (q < limit && la.charCodeAt(la.length - 1 - q) === lb.charCodeAt(lb.length - 1 - q)) q++;
  // ... and the last difference ends at the next comma (the suffix from there is common, commas included)
  let endA = la.indexOf(',', la.length - q);
  if (endA === -1) endA = la.length;
  const endB = lb.length - (la.length - endA);
  const xa = endA > start ? la.slice(start, endA).split(',') : [];
  const xb = endB > start ? lb.slice(start, endB).split(',') : [];
  const counts = new Map<string, number>();
  for (const f of xb) counts.set(f, (counts.get(f) ?? 0) + 1);
  const onlyA: string[] = [];
  for (const f of xa) {
    const c = counts.get(f);
    if (c) counts.set(f, c - 1);
    else onlyA.push(f);
  }
  const onlyB: string[] = [];
  for (const [f, c] of counts) for (let k = 0; k < c; k++) onlyB.push(f);
  return [onlyA, onlyB];
}

const keyId = (k: ObjectKey) => `${k.version}\u0000${k.objectId}`;

/**
 * Both sides' metadata of the rows a fingerprint-list comparison left unmatched, classified in key order. A key
 * found on one side only is looked up by key on the other (its row may have changed since the lists were read).
 * Adds the rows it streamed to `stats`.
 */
export async function classifyUnmatched(
  a: ObjectStoreAdapter,
  b: ObjectStoreAdapter,
  pa: FingerprintProbe[],
  pb: FingerprintProbe[],
  stats: Pick<DiffStats, 'scannedA' | 'scannedB'>,
): Promise<DriftEntry[]> {
  const [ma, mb] = await Promise.all([
    pa.length ? a.metaByFingerprint!(pa) : [],
    pb.length ? b.metaByFingerprint!(pb) : [],
  ]);
  const xa = new Map(ma.map((m) => [keyId(m), m]));
  const xb = new Map(mb.map((m) => [keyId(m), m]));
  const [la, lb] = [mb.filter((m) => !xa.has(keyId(m))), ma.filter((m) => !xb.has(keyId(m)))];
  const [ra, rb] = await Promise.all([la.length ? a.getMeta(la) : [], lb.length ? b.getMeta(lb) : []]);
  for (const m of ra) xa.set(keyId(m), m);
  for (const m of rb) xb.set(keyId(m), m);
  stats.scannedA += ma.length + ra.length;
  stats.scannedB += mb.length + rb.length;
  const keys = new Map<string, ObjectKey>();
  for (const m of [...ma, ...mb]) keys.set(keyId(m), m);
  const out: DriftEntry[] = [];
  for (const k of [...keys.values()].sort(compareKeys)) {
    const id = keyId(k);
    const left = xa.get(id);
    const right = xb.get(id);
    const cls = classify(left, right);
    // unmatched fingerprints with identical metadata: the row changed between the reads
    if (cls) out.push({ objectId: k.objectId, version: k.version, class: cls, a: left, b: right });
  }
  return out;
}

/**
 * Compares two stores over a key range without loading either into memory.
 *
 * When both stores checksum ranges themselves (`bisect`, the data-diff approach): the range is cut into
 * segments of `segmentRows` rows (keys from one side), a window of segments at a time, and each store computes
 * (count, Σ fingerprint halves) of every segment of the window in one call. Only the segments that differ are
 * read, as one fingerprint list per segment and side (equal lists are equal rows); only the fingerprints one side
 * has and the other does not are looked up with their metadata (`metaByFingerprint`) and classified. With
 * fingerprints stored in the stores (a column kept by a trigger, or the object store's index), sums and lists are
 * index-only reads. A small first window measures the drift's density: while more than `listAbove` of a window's
 * segments differ, the sums would mostly say "read it", so the next windows read every segment's list instead.
 *
 * Otherwise both sides are streamed in key order and merged (`merge`).
 */
export async function* diffStores(
  a: ObjectStoreAdapter,
  b: ObjectStoreAdapter,
  range: KeyRange,
  options: DiffOptions = {},
): AsyncGenerator<DriftEntry> {
  const pageSize = options.pageSize ?? DETECTION_DEFAULTS.pageSize;
  const segmentRows = options.segmentRows ?? DETECTION_DEFAULTS.segmentRows;
  const windowSegments = options.windowSegments ?? DETECTION_DEFAULTS.windowSegments;
  const readRows = options.readRows ?? DETECTION_DEFAULTS.readRows;
  const listAbove = options.listAbove ?? DETECTION_DEFAULTS.listAbove;
  const canBisect = !options.mergeOnly && canSegment(a) && canSegment(b) && Boolean(a.stepKeys || b.stepKeys);
  const stats = emptyStats(canBisect ? 'bisect' : 'merge');
  const report = () => options.onProgress?.(stats);

  async function* merge(r: KeyRange): AsyncGenerator<DriftEntry> {
    const ca = new RowCursor(a, r, pageSize, (n) => ((stats.scannedA += n), (stats.rowsA += n)));
    const cb = new RowCursor(b, r, pageSize, (n) => ((stats.scannedB += n), (stats.rowsB += n)));
    for (;;) {
      const [ra, rb] = await Promise.all([ca.peek(), cb.peek()]);
      if (!ra && !rb) break;
      const order = !ra ? 1 : !rb ? -1 : compareKeys(ra, rb);
      const left = order <= 0 ? ra : undefined;
      const right = order >= 0 ? rb : undefined;
      if (left) ca.advance();
      if (right) cb.advance();
      const cls = classify(left, right);
      if (cls) {
        const key = (left ?? right)!;
        yield { objectId: key.objectId, version: key.version, class: cls, a: left, b: right };
      }
    }
    report();
  }

  /**
   * Classifications in flight, in key order: a batch's metadata lookups run while the next lists are read and
   * compared (and the next window is cut), and are awaited only when more than `inFlight` batches are pending.
   */
  const classifying: Array<Promise<DriftEntry[]>> = [];
  const inFlight = 4;
  function classifyLater(pa: FingerprintProbe[], pb: FingerprintProbe[]): void {
    const p = classifyUnmatched(a, b, pa, pb, stats);
    // awaited in order by drain(); a consumer that stops early leaves it unobserved, not unhandled
    p.catch(() => {});
    classifying.push(p);
  }
  async function* drain(keep: number): AsyncGenerator<DriftEntry> {
    while (classifying.length > keep) yield* await classifying.shift()!;
  }

  /**
   * Reads the fingerprint lists of each group of ranges (the next group's read runs while this one's are
   * compared) and queues the classification of the unmatched rows, at most `pageSize` per batch, in key order.
   * Returns how many of the ranges differed.
   */
  async function* compareGroups(groups: KeyRange[][]): AsyncGenerator<DriftEntry, number> {
    const read = (g: KeyRange[]) => {
      const p = Promise.all([a.fingerprintLists!(g), b.fingerprintLists!(g)]);
      p.catch(() => {});
      return p;
    };
    let differing = 0;
    let next = groups.length ? read(groups[0]!) : undefined;
    let [pa, pb, pending]: [FingerprintProbe[], FingerprintProbe[], number] = [[], [], 0];
    for (let g = 0; next; g++) {
      const ranges = groups[g]!;
      const [fa, fb] = await next;
      next = g + 1 < groups.length ? read(groups[g + 1]!) : undefined;
      for (let i = 0; i < ranges.length; i++) {
        const [la, lb] = [fa[i]!, fb[i]!];
        const [na, nb] = [listLength(la), listLength(lb)];
        stats.rowsA += na;
        stats.rowsB += nb;
        stats.scannedA += na;
        stats.scannedB += nb;
        stats.listedA += na;
        stats.listedB += nb;
        stats.listBytesA += la.length;
        stats.listBytesB += lb.length;
        if (la === lb) continue;
        differing++;
        const [onlyA, onlyB] = unmatchedFingerprints(la, lb);
        if (onlyA.length) pa.push({ range: ranges[i]!, fingerprints: onlyA });
        if (onlyB.length) pb.push({ range: ranges[i]!, fingerprints: onlyB });
        pending += onlyA.length + onlyB.length;
        if (pending >= pageSize) {
          classifyLater(pa, pb);
          [pa, pb, pending] = [[], [], 0];
        }
      }
      if (pending) {
        classifyLater(pa, pb);
        [pa, pb, pending] = [[], [], 0];
      }
      yield* drain(inFlight);
    }
    return differing;
  }

  /** consecutive ranges in groups of at most `readRows` rows (by `rows(i)`), adjacent ones joined when `joinAdjacent` */
  function groupRanges(ranges: KeyRange[], rows: (i: number) => number, joinAdjacent: boolean): KeyRange[][] {
    const groups: KeyRange[][] = [];
    let group: KeyRange[] = [];
    let n = 0;
    for (const [i, seg] of ranges.entries()) {
      if (group.length && n + rows(i) > readRows) {
        groups.push(group);
        group = [];
        n = 0;
      }
      const last = group[group.length - 1];
      if (joinAdjacent && last && last.to === seg.from) last.to = seg.to;
      else group.push({ ...seg });
      n += rows(i);
    }
    if (group.length) groups.push(group);
    return groups;
  }

  interface Window {
    ranges: KeyRange[];
    /** both sides' summaries; absent when the window compares every segment's list */
    sums?: [SegmentSummary[], SegmentSummary[]];
    /** where the next window starts; undefined after the last one */
    next?: ObjectKey;
    last: boolean;
  }

  async function* bisect(r: KeyRange): AsyncGenerator<DriftEntry> {
    // one side cuts the segments: one that answers in-process if there is one (thousands of small calls)
    const cutters = [a, b].filter((s) => s.stepKeys);
    const cutter = cutters.find((s) => s.inProcess) ?? cutters[0]!;

    /** the segments of the window starting at `from` and, unless it compares lists only, both sides' summaries */
    const prepare = async (
      from: ObjectKey | undefined,
      listsOnly: boolean,
      segments = windowSegments,
    ): Promise<Window> => {
      const keys = await cutter.stepKeys!({ from, to: r.to }, segmentRows, segments);
      const last = keys.length < segments;
      const bounds: Array<ObjectKey | undefined> = [from, ...keys];
      if (last) bounds.push(r.to);
      const ranges: KeyRange[] = [];
      for (let i = 0; i + 1 < bounds.length; i++) ranges.push({ from: bounds[i], to: bounds[i + 1] });
      const sums = listsOnly ? undefined : await Promise.all([a.summarizeRanges!(ranges), b.summarizeRanges!(ranges)]);
      return { ranges, sums, last, next: last ? undefined : keys[keys.length - 1] };
    };

    // the share of differing segments in the last window measured (0 before the first)
    let density = 0;
    // a small first window measures the density before a whole window is summed
    let pending: Promise<Window> | undefined = prepare(r.from, false, Math.max(1, Math.ceil(windowSegments / 8)));
    while (pending) {
      const w: Window = await pending;
      let groups: KeyRange[][];
      if (w.sums) {
        const [xa, xb] = w.sums;
        stats.summaries += 2 * w.ranges.length;
        const differ: number[] = [];
        for (let i = 0; i < w.ranges.length; i++) {
          if (!sameSummary(xa[i]!, xb[i]!)) differ.push(i);
          else {
            stats.rowsA += xa[i]!.count;
            stats.rowsB += xb[i]!.count;
          }
        }
        density = differ.length / Math.max(1, w.ranges.length);
        // adjacent differing segments are read as one range, at most `readRows` rows per read
        groups = groupRanges(
          differ.map((i) => w.ranges[i]!),
          (j) => Math.max(xa[differ[j]!]!.count, xb[differ[j]!]!.count),
          true,
        );
      } else {
        groups = groupRanges(w.ranges, () => segmentRows, false);
      }
      // the next window is cut (and summed) while this one's lists are compared (a consumer that stops early
      // leaves it running: its failure is not this generator's)
      pending = w.last ? undefined : prepare(w.next, density > listAbove);
      pending?.catch(() => {});
      const differing = yield* compareGroups(groups);
      if (!w.sums) density = differing / Math.max(1, w.ranges.length);
      report();
    }
    yield* drain(0);
  }

  yield* canBisect ? bisect(range) : merge(range);
  report();
}

/** DiffStats before any row is compared. */
export const emptyStats = (mode: DiffStats['mode']): DiffStats => ({
  rowsA: 0,
  rowsB: 0,
  scannedA: 0,
  scannedB: 0,
  listedA: 0,
  listedB: 0,
  listBytesA: 0,
  listBytesB: 0,
  summaries: 0,
  mode,
});

export function emptyCounts(): Record<DriftClass, number> {
  return { missing_in_a: 0, missing_in_b: 0, content_mismatch: 0, metadata_mismatch: 0 };
}
