import { compareKeys, sameMeta, sameSummary } from './fingerprint.js';
import type { KeyRange, ObjectKey, ObjectMeta, ObjectStoreAdapter } from './types.js';

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
  /** segments with at most this many rows are compared row by row */
  leafRows?: number;
  /** how many sub-segments a differing segment is split into */
  fanout?: number;
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

/**
 * Compares two stores over a key range without loading either into memory. When both can checksum a range
 * themselves, segments are compared by (count, hash) and only differing segments are split (the data-diff
 * approach); small segments, and stores that cannot checksum, are streamed in key order and merged.
 */
export async function* diffStores(a: ObjectStoreAdapter, b: ObjectStoreAdapter, range: KeyRange, options: DiffOptions = {}): AsyncGenerator<DriftEntry> {
  const pageSize = options.pageSize ?? 5000;
  const leafRows = options.leafRows ?? 2000;
  const fanout = options.fanout ?? 16;
  const canBisect = !options.mergeOnly && a.summarize && b.summarize && (a.splitPoints || b.splitPoints);
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

  async function* bisect(r: KeyRange): AsyncGenerator<DriftEntry> {
    const [sa, sb] = await Promise.all([a.summarize!(r), b.summarize!(r)]);
    stats.summaries += 2;
    if (sameSummary(sa, sb)) {
      stats.rowsA += sa.count;
      stats.rowsB += sb.count;
      report();
      return;
    }
    if (Math.max(sa.count, sb.count) <= leafRows) return yield* merge(r);
    const splitter = sa.count >= sb.count && a.splitPoints ? a : b.splitPoints ? b : a;
    const points = await splitter.splitPoints!(r, fanout);
    if (points.length === 0) return yield* merge(r);
    const bounds: Array<ObjectKey | undefined> = [r.from, ...points, r.to];
    for (let i = 0; i + 1 < bounds.length; i++) yield* bisect({ from: bounds[i], to: bounds[i + 1] });
  }

  yield* canBisect ? bisect(range) : merge(range);
  report();
}

export function emptyCounts(): Record<DriftClass, number> {
  return { missing_in_a: 0, missing_in_b: 0, content_mismatch: 0, metadata_mismatch: 0 };
}
