import { classifyUnmatched, unmatchedFingerprints, type DriftEntry } from '../stores/diff.js';
import { compareKeys, sameSummary } from '../stores/fingerprint.js';
import type { FingerprintProbe, KeyRange, ObjectKey, ObjectStoreAdapter, SegmentSummary } from '../stores/types.js';

/**
 * One key-range segment of a dual-write pair as the last check left it: where it ends (exclusive; the last one is
 * open), both sides' summaries (count, Σ fingerprint halves) and the differences found in it. Segments are key
 * ranges, not row counts: an insert or a delete changes the summary of the one segment its key falls in and moves
 * no boundary, so every other segment's summary stays comparable.
 */
export interface CheckSegment {
  to?: ObjectKey;
  a: SegmentSummary;
  b: SegmentSummary;
  drift: DriftEntry[];
}

export interface IncrementalOptions {
  /** rows per segment when the key space is cut (first pass) or an oversized changed segment is split */
  segmentRows: number;
  /** segments per summary call */
  windowSegments: number;
  /** rows of fingerprint lists read per call and side (bounds memory when many segments changed) */
  readRows: number;
  onProgress?: (stats: IncrementalStats) => void;
}

export interface IncrementalStats {
  /** segments in the stored state after this pass */
  segments: number;
  /** segments whose summaries differed from the stored ones (all of them on a first pass) */
  changed: number;
  /** of those, segments where the two sides' summaries differed: compared row by row */
  compared: number;
  /** segments whose stored differences were kept (neither side's summary changed) */
  reused: number;
  /** rows covered by the summaries, per side */
  rowsA: number;
  rowsB: number;
  /** rows streamed by the comparisons of changed segments (fingerprints and metadata), per side */
  scannedA: number;
  scannedB: number;
  /** keys the stores' change tracking marked changed, read by key on both sides (a tracked re-check) */
  keys?: number;
}

/** A summary that equals no real one: the segment is compared again on the next pass. */
export const UNKNOWN: SegmentSummary = { count: -1, h1: '', h2: '' };

const addSummaries = (xs: SegmentSummary[]): SegmentSummary =>
  xs.some((x) => x.count < 0)
    ? UNKNOWN
    : {
        count: xs.reduce((n, x) => n + x.count, 0),
        h1: xs.reduce((n, x) => n + BigInt(x.h1), 0n).toString(),
        h2: xs.reduce((n, x) => n + BigInt(x.h2), 0n).toString(),
      };

const supportsIncremental = (s: ObjectStoreAdapter): boolean =>
  Boolean(s.summarizeRanges && s.fingerprintLists && s.metaByFingerprint);

/** Whether both sides can summarize key ranges themselves (otherwise only the streaming merge can compare them). */
export const canCheckIncrementally = (a: ObjectStoreAdapter, b: ObjectStoreAdapter): boolean =>
  supportsIncremental(a) && supportsIncremental(b) && Boolean(a.stepKeys || b.stepKeys);

/**
 * Compares the pair segment by segment against `previous` (the stored state of the last pass, or undefined for a
 * first pass, which cuts the key space into segments of `segmentRows`): both sides summarize every segment (an
 * index-only sum with stored fingerprints); a segment whose two summaries are both the stored ones keeps its
 * stored differences; one where either changed is compared again — not at all when its sides agree, otherwise
 * row by row (both sides' fingerprint lists; the metadata of the unmatched rows). Every change of a row (content, metadata, insert, delete, on either
 * side) changes its segment's summary, so none is missed; what is skipped is exactly what no summary says moved.
 *
 * A compared segment's summaries are read again after its comparison: if they moved during it, the segment is
 * stored as UNKNOWN and compared on the next pass (its differences were read from a state the summaries do not
 * describe). An oversized compared segment (more than 4 × segmentRows rows, after inserts) is split.
 */
export async function incrementalDiff(
  a: ObjectStoreAdapter,
  b: ObjectStoreAdapter,
  previous: CheckSegment[] | undefined,
  o: IncrementalOptions,
): Promise<{ segments: CheckSegment[]; stats: IncrementalStats }> {
  const cutters = [a, b].filter((s) => s.stepKeys);
  const cutter = cutters.find((s) => s.inProcess) ?? cutters[0]!;
  const stats: IncrementalStats = {
    segments: 0,
    changed: 0,
    compared: 0,
    reused: 0,
    rowsA: 0,
    rowsB: 0,
    scannedA: 0,
    scannedB: 0,
  };
  const out: CheckSegment[] = [];

  /** the previous segments, a window at a time; or, on a first pass, a window of freshly cut ones */
  let from: ObjectKey | undefined;
  let index = 0;
  async function nextWindow(): Promise<{ ranges: KeyRange[]; prev: Array<CheckSegment | undefined> } | undefined> {
    if (previous) {
      if (index >= previous.length) return undefined;
      const prev = previous.slice(index, index + o.windowSegments);
      const ranges = prev.map((s, i) => ({ from: i === 0 ? from : prev[i - 1]!.to, to: s.to }));
      index += prev.length;
      from = prev[prev.length - 1]!.to;
      return { ranges, prev };
    }
    if (index < 0) return undefined;
    const keys = await cutter.stepKeys!({ from }, o.segmentRows, o.windowSegments);
    const bounds: Array<ObjectKey | undefined> = [from, ...keys];
    const last = keys.length < o.windowSegments;
    if (last) bounds.push(undefined);
    const ranges: KeyRange[] = [];
    for (let i = 0; i + 1 < bounds.length; i++) ranges.push({ from: bounds[i], to: bounds[i + 1] });
    from = keys[keys.length - 1] ?? from;
    index = last ? -1 : index + ranges.length;
    return { ranges, prev: ranges.map(() => undefined) };
  }

  for (let w = await nextWindow(); w; w = await nextWindow()) {
    const [sa, sb] = await Promise.all([a.summarizeRanges!(w.ranges), b.summarizeRanges!(w.ranges)]);
    const changed: number[] = [];
    const results: CheckSegment[][] = w.ranges.map(() => []);
    for (let i = 0; i < w.ranges.length; i++) {
      const [xa, xb, prev] = [sa[i]!, sb[i]!, w.prev[i]];
      stats.rowsA += xa.count;
      stats.rowsB += xb.count;
      if (prev && sameSummary(prev.a, xa) && sameSummary(prev.b, xb)) {
        stats.reused++;
        results[i] = [{ to: w.ranges[i]!.to, a: xa, b: xb, drift: prev.drift }];
        continue;
      }
      stats.changed++;
      if (sameSummary(xa, xb)) results[i] = [{ to: w.ranges[i]!.to, a: xa, b: xb, drift: [] }];
      else changed.push(i);
    }
    stats.compared += changed.length;
    // the changed segments whose sides differ: fingerprint lists, at most readRows rows per read
    for (let g = 0; g < changed.length;) {
      const group: number[] = [];
      let rows = 0;
      while (g < changed.length && (group.length === 0 || rows + rowsOf(changed[g]!) <= o.readRows)) {
        rows += rowsOf(changed[g]!);
        group.push(changed[g++]!);
      }
      const compared = await compareSegments(group.map((i) => ({ range: w.ranges[i]!, a: sa[i]!, b: sb[i]! })));
      group.forEach((i, k) => (results[i] = compared[k]!));
    }
    for (const r of results) out.push(...r);
    stats.segments = out.length;
    o.onProgress?.(stats);

    function rowsOf(i: number): number {
      return Math.max(sa[i]!.count, sb[i]!.count);
    }
  }

  /**
   * Segments whose sides' summaries differ, compared row by row: both sides' fingerprint lists (one call per side),
   * the unmatched fingerprints' metadata classified; then summarized again (split when oversized). A segment
   * whose summaries moved while it was compared is stored as UNKNOWN (its differences describe neither).
   */
  async function compareSegments(segs: Array<{ range: KeyRange; a: SegmentSummary; b: SegmentSummary }>) {
    const ranges = segs.map((s) => s.range);
    const [la, lb] = await Promise.all([a.fingerprintLists!(ranges), b.fingerprintLists!(ranges)]);
    const pa: FingerprintProbe[] = [];
    const pb: FingerprintProbe[] = [];
    for (let i = 0; i < segs.length; i++) {
      stats.scannedA += segs[i]!.a.count;
      stats.scannedB += segs[i]!.b.count;
      if (la[i] === lb[i]) continue;
      const [onlyA, onlyB] = unmatchedFingerprints(la[i]!, lb[i]!);
      if (onlyA.length) pa.push({ range: ranges[i]!, fingerprints: onlyA });
      if (onlyB.length) pb.push({ range: ranges[i]!, fingerprints: onlyB });
    }
    const drift = await classifyUnmatched(a, b, pa, pb, stats);
    // split segments that grew well past their size (inserts), so that a later change reads a small one
    const parts: KeyRange[][] = [];
    for (const s of segs) {
      const rows = Math.max(s.a.count, s.b.count);
      if (rows <= 4 * o.segmentRows) {
        parts.push([s.range]);
        continue;
      }
      const keys = await cutter.stepKeys!(s.range, o.segmentRows, Math.ceil(rows / o.segmentRows));
      const bounds = [s.range.from, ...keys.filter((k) => !s.range.to || compareKeys(k, s.range.to) < 0), s.range.to];
      const split: KeyRange[] = [];
      for (let i = 0; i + 1 < bounds.length; i++) split.push({ from: bounds[i], to: bounds[i + 1] });
      parts.push(split);
    }
    const flat = parts.flat();
    const [pa2, pb2] = await Promise.all([a.summarizeRanges!(flat), b.summarizeRanges!(flat)]);
    let at = 0;
    return segs.map((s, i) => {
      const n = parts[i]!.length;
      const [xa, xb] = [pa2.slice(at, at + n), pb2.slice(at, at + n)];
      at += n;
      const stable = sameSummary(addSummaries(xa), s.a) && sameSummary(addSummaries(xb), s.b);
      return parts[i]!.map((p, k): CheckSegment => ({
        to: p.to,
        a: stable ? xa[k]! : UNKNOWN,
        b: stable ? xb[k]! : UNKNOWN,
        drift: drift.filter((e) => (!p.from || compareKeys(e, p.from) >= 0) && (!p.to || compareKeys(e, p.to) < 0)),
      }));
    });
  }

  return { segments: out, stats };
}
