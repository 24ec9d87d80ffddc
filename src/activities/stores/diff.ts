import { compareKeys, sameMeta, sameSummary } from './fingerprint.js';
import type { KeyFingerprint, KeyRange, ObjectKey, ObjectMeta, ObjectStoreAdapter } from './types.js';

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

const canSegment = (s: ObjectStoreAdapter): boolean => Boolean(s.summarize && s.summarizeRanges && s.fingerprints);

/** rows of both sides in key order; a store that broke its ordering promise would make the merge lie */
function assertOrdered(rows: KeyFingerprint[], store: ObjectStoreAdapter): void {
  for (let i = 1; i < rows.length; i++) {
    if (compareKeys(rows[i - 1]!, rows[i]!) >= 0) throw new Error(`${store.describe()}: fingerprints are not in key order at ${rows[i]!.objectId}@${rows[i]!.version}`);
  }
}

/**
 * Compares two stores over a key range without loading either into memory.
 *
 * When both stores checksum ranges themselves (`bisect`, the data-diff approach): the whole range is compared
 * by (count, Σ fingerprint halves) first; when it differs, it is cut into segments of `segmentRows` rows (keys
 * from the side with more rows), a window of segments at a time, and each store sums every segment of the
 * window in one statement; only the segments that differ are read, as (key, fingerprint) rows, and only the
 * keys whose fingerprints differ are fetched with their metadata and classified. With fingerprints stored in
 * the stores (a column kept by a trigger, or the object store's index), a segment sum is an index-only scan.
 *
 * Otherwise both sides are streamed in key order and merged (`merge`).
 */
export async function* diffStores(a: ObjectStoreAdapter, b: ObjectStoreAdapter, range: KeyRange, options: DiffOptions = {}): AsyncGenerator<DriftEntry> {
  const pageSize = options.pageSize ?? 5000;
  const segmentRows = options.segmentRows ?? 64;
  const windowSegments = options.windowSegments ?? 4096;
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

  /** The keys whose (key, fingerprint) rows differ, then their metadata from both sides, classified in key order. */
  async function* compareRows(ranges: KeyRange[]): AsyncGenerator<DriftEntry> {
    const [fa, fb] = await Promise.all([a.fingerprints!(ranges), b.fingerprints!(ranges)]);
    assertOrdered(fa, a);
    assertOrdered(fb, b);
    stats.rowsA += fa.length;
    stats.rowsB += fb.length;
    stats.scannedA += fa.length;
    stats.scannedB += fb.length;
    const suspects: ObjectKey[] = [];
    let i = 0;
    let j = 0;
    while (i < fa.length || j < fb.length) {
      const x = fa[i];
      const y = fb[j];
      const order = !x ? 1 : !y ? -1 : compareKeys(x, y);
      if (order === 0 && x!.fp === y!.fp) {
        i++;
        j++;
        continue;
      }
      const k = order <= 0 ? x! : y!;
      suspects.push({ objectId: k.objectId, version: k.version });
      if (order <= 0) i++;
      if (order >= 0) j++;
    }
    for (let start = 0; start < suspects.length; start += pageSize) {
      const keys = suspects.slice(start, start + pageSize);
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
  }

  async function* bisect(r: KeyRange): AsyncGenerator<DriftEntry> {
    const [sa, sb] = await Promise.all([a.summarize!(r), b.summarize!(r)]);
    stats.summaries += 2;
    if (sameSummary(sa, sb)) {
      stats.rowsA += sa.count;
      stats.rowsB += sb.count;
      report();
      return;
    }
    const cutter = (sa.count >= sb.count && a.stepKeys) || !b.stepKeys ? a : b;
    let from = r.from;
    for (;;) {
      const keys = await cutter.stepKeys!({ from, to: r.to }, segmentRows, windowSegments);
      const last = keys.length < windowSegments;
      const bounds: Array<ObjectKey | undefined> = [from, ...keys];
      if (last) bounds.push(r.to);
      const ranges: KeyRange[] = [];
      for (let i = 0; i + 1 < bounds.length; i++) ranges.push({ from: bounds[i], to: bounds[i + 1] });
      const [xa, xb] = await Promise.all([a.summarizeRanges!(ranges), b.summarizeRanges!(ranges)]);
      stats.summaries += 2 * ranges.length;
      // adjacent differing segments are read as one range
      const differing: KeyRange[] = [];
      let previous = -2;
      ranges.forEach((seg, i) => {
        if (sameSummary(xa[i]!, xb[i]!)) {
          stats.rowsA += xa[i]!.count;
          stats.rowsB += xb[i]!.count;
          return;
        }
        if (previous === i - 1) differing[differing.length - 1]!.to = seg.to;
        else differing.push({ ...seg });
        previous = i;
      });
      if (differing.length) yield* compareRows(differing);
      report();
      if (last) return;
      from = keys[keys.length - 1];
    }
  }

  yield* canBisect ? bisect(range) : merge(range);
  report();
}

export function emptyCounts(): Record<DriftClass, number> {
  return { missing_in_a: 0, missing_in_b: 0, content_mismatch: 0, metadata_mismatch: 0 };
}
