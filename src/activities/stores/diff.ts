import { DETECTION_DEFAULTS } from '../../shared/constants.js';
import { compareKeys, sameMeta, sameSummary } from './fingerprint.js';
import type { FingerprintLine, KeyRange, ObjectKey, ObjectMeta, ObjectStoreAdapter, SegmentSummary } from './types.js';

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
  /** rows of differing segments read (as fingerprint lines) per call and side: bounds memory at dense drift */
  readRows?: number;
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
  constructor(store: ObjectStoreAdapter, range: KeyRange, pageSize: number, private readonly count: (n: number) => void) {
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

const canSegment = (s: ObjectStoreAdapter): boolean => Boolean(s.summarizeRanges && s.fingerprints);

/** the key of a FingerprintLine */
function lineKey(line: FingerprintLine): ObjectKey {
  const end = line.lastIndexOf('\x1f');
  const mid = line.lastIndexOf('\x1f', end - 1);
  return { objectId: line.slice(0, mid), version: Number(line.slice(mid + 1, end)) };
}

/**
 * Compares two stores over a key range without loading either into memory.
 *
 * When both stores checksum ranges themselves (`bisect`, the data-diff approach): the range is cut into
 * segments of `segmentRows` rows (keys from one side), a window of segments at a time, and each store computes
 * (count, Σ fingerprint halves) of every segment of the window in one call; only the segments that differ are read, as (key, fingerprint) rows, and only the
 * keys whose fingerprints differ are fetched with their metadata and classified. With fingerprints stored in
 * the stores (a column kept by a trigger, or the object store's index), a segment sum is an index-only scan.
 *
 * Otherwise both sides are streamed in key order and merged (`merge`).
 */
export async function* diffStores(a: ObjectStoreAdapter, b: ObjectStoreAdapter, range: KeyRange, options: DiffOptions = {}): AsyncGenerator<DriftEntry> {
  const pageSize = options.pageSize ?? DETECTION_DEFAULTS.pageSize;
  const segmentRows = options.segmentRows ?? DETECTION_DEFAULTS.segmentRows;
  const windowSegments = options.windowSegments ?? DETECTION_DEFAULTS.windowSegments;
  const readRows = options.readRows ?? 16_384;
  const canBisect = !options.mergeOnly && canSegment(a) && canSegment(b) && Boolean(a.stepKeys || b.stepKeys);
  const stats: DiffStats = { rowsA: 0, rowsB: 0, scannedA: 0, scannedB: 0, summaries: 0, mode: canBisect ? 'bisect' : 'merge' };
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

  /** The keys whose fingerprint lines differ between the sides (present on one side only, or other fingerprint). */
  function differingKeys(fa: FingerprintLine[], fb: FingerprintLine[]): ObjectKey[] {
    stats.rowsA += fa.length;
    stats.rowsB += fb.length;
    stats.scannedA += fa.length;
    stats.scannedB += fb.length;
    const suspects: ObjectKey[] = [];
    let i = 0;
    let j = 0;
    let previous: ObjectKey | undefined;
    while (i < fa.length || j < fb.length) {
      const x = fa[i];
      const y = fb[j];
      if (x === y) {
        i++;
        j++;
        continue;
      }
      const kx = x === undefined ? undefined : lineKey(x);
      const ky = y === undefined ? undefined : lineKey(y);
      const order = !kx ? 1 : !ky ? -1 : compareKeys(kx, ky);
      const k = order <= 0 ? kx! : ky!;
      // a store that broke its ordering promise would make the merge lie
      if (previous && compareKeys(previous, k) >= 0) throw new Error(`fingerprints are not in key order at ${k.objectId}@${k.version}`);
      previous = k;
      suspects.push(k);
      if (order <= 0) i++;
      if (order >= 0) j++;
    }
    return suspects;
  }

  /** Both sides' metadata of these keys, classified, in the keys' order. */
  async function* classifyKeys(keys: ObjectKey[]): AsyncGenerator<DriftEntry> {
    const [ma, mb] = await Promise.all([a.getMeta(keys), b.getMeta(keys)]);
    stats.scannedA += ma.length;
    stats.scannedB += mb.length;
    const byKey = (rows: ObjectMeta[]) => new Map(rows.map((m) => [`${m.version}\u0000${m.objectId}`, m]));
    const [xa, xb] = [byKey(ma), byKey(mb)];
    for (const k of keys) {
      const id = `${k.version}\u0000${k.objectId}`;
      const left = xa.get(id);
      const right = xb.get(id);
      const cls = classify(left, right);
      // a changed fingerprint with identical metadata: the row changed and changed back between the two reads
      if (cls) yield { objectId: k.objectId, version: k.version, class: cls, a: left, b: right };
    }
  }

  /**
   * Reads the fingerprint lines of each group of differing ranges (the next group's read runs while this one's
   * are merged) and classifies the differing keys `pageSize` at a time, in key order.
   */
  async function* compareGroups(groups: KeyRange[][]): AsyncGenerator<DriftEntry> {
    const read = (g: KeyRange[]) => {
      const p = Promise.all([a.fingerprints!(g), b.fingerprints!(g)]);
      p.catch(() => {});
      return p;
    };
    let next = groups.length ? read(groups[0]!) : undefined;
    const suspects: ObjectKey[] = [];
    for (let g = 0; next; g++) {
      const [fa, fb] = await next;
      next = g + 1 < groups.length ? read(groups[g + 1]!) : undefined;
      suspects.push(...differingKeys(fa, fb));
      if (suspects.length >= pageSize || !next) {
        for (let start = 0; start < suspects.length; start += pageSize) yield* classifyKeys(suspects.slice(start, start + pageSize));
        suspects.length = 0;
      }
    }
  }

  interface Window {
    ranges: KeyRange[];
    sums: [SegmentSummary[], SegmentSummary[]];
    /** where the next window starts; undefined after the last one */
    next?: ObjectKey;
    last: boolean;
  }

  async function* bisect(r: KeyRange): AsyncGenerator<DriftEntry> {
    // one side cuts the segments: one that answers in-process if there is one (thousands of small calls)
    const cutters = [a, b].filter((s) => s.stepKeys);
    const cutter = cutters.find((s) => s.inProcess) ?? cutters[0]!;

    /** the segments of the window starting at `from` and both sides' summaries of them */
    const prepare = async (from: ObjectKey | undefined): Promise<Window> => {
      const keys = await cutter.stepKeys!({ from, to: r.to }, segmentRows, windowSegments);
      const last = keys.length < windowSegments;
      const bounds: Array<ObjectKey | undefined> = [from, ...keys];
      if (last) bounds.push(r.to);
      const ranges: KeyRange[] = [];
      for (let i = 0; i + 1 < bounds.length; i++) ranges.push({ from: bounds[i], to: bounds[i + 1] });
      const sums = await Promise.all([a.summarizeRanges!(ranges), b.summarizeRanges!(ranges)]);
      return { ranges, sums, last, next: last ? undefined : keys[keys.length - 1] };
    };

    let pending: Promise<Window> | undefined = prepare(r.from);
    while (pending) {
      const w: Window = await pending;
      // the next window's summaries are computed while this one's differing rows are compared (a consumer that
      // stops early leaves it running: its failure is not this generator's)
      pending = w.last ? undefined : prepare(w.next);
      pending?.catch(() => {});
      const [xa, xb] = w.sums;
      stats.summaries += 2 * w.ranges.length;
      // adjacent differing segments are read as one range, at most `readRows` rows per read (memory stays
      // bounded however dense the drift)
      const groups: KeyRange[][] = [];
      let group: KeyRange[] = [];
      let rows = 0;
      for (const [i, seg] of w.ranges.entries()) {
        if (sameSummary(xa[i]!, xb[i]!)) {
          stats.rowsA += xa[i]!.count;
          stats.rowsB += xb[i]!.count;
          continue;
        }
        const n = Math.max(xa[i]!.count, xb[i]!.count);
        if (group.length && rows + n > readRows) {
          groups.push(group);
          group = [];
          rows = 0;
        }
        const last = group[group.length - 1];
        if (last && last.to === seg.from) last.to = seg.to;
        else group.push({ ...seg });
        rows += n;
      }
      if (group.length) groups.push(group);
      yield* compareGroups(groups);
      report();
    }
  }

  yield* canBisect ? bisect(range) : merge(range);
  report();
}

export function emptyCounts(): Record<DriftClass, number> {
  return { missing_in_a: 0, missing_in_b: 0, content_mismatch: 0, metadata_mismatch: 0 };
}
