/**
 * The naive baseline beside diffStores: both sides exported completely into arrays (scan(), both at once), sorted
 * and merged in Node, every pair of rows classified. Runs in the detection child (child.ts, variant `naive`).
 */
import { classify, emptyStats, type DiffStats, type DriftEntry } from '../../src/activities/stores/diff.js';
import { compareKeys } from '../../src/activities/stores/fingerprint.js';
import type { ObjectMeta, ObjectStoreAdapter } from '../../src/activities/stores/types.js';

async function exportAll(store: ObjectStoreAdapter, pageSize: number): Promise<ObjectMeta[]> {
  const rows: ObjectMeta[] = [];
  for await (const page of store.scan({}, pageSize)) for (const row of page) rows.push(row);
  return rows;
}

/** Writes every difference; returns how many, the rows compared and where the time went (export, sort, merge). */
export async function naiveDiff(
  a: ObjectStoreAdapter,
  b: ObjectStoreAdapter,
  pageSize: number,
  write: (entry: DriftEntry) => Promise<void>,
): Promise<{ entries: number; stats: DiffStats; phases: Record<string, number> }> {
  const t0 = performance.now();
  const [ra, rb] = await Promise.all([exportAll(a, pageSize), exportAll(b, pageSize)]);
  const t1 = performance.now();
  ra.sort(compareKeys);
  rb.sort(compareKeys);
  const t2 = performance.now();
  let entries = 0;
  let i = 0;
  let j = 0;
  while (i < ra.length || j < rb.length) {
    const x = ra[i];
    const y = rb[j];
    const order = !x ? 1 : !y ? -1 : compareKeys(x, y);
    const left = order <= 0 ? x : undefined;
    const right = order >= 0 ? y : undefined;
    if (left) i++;
    if (right) j++;
    const cls = classify(left, right);
    if (cls) {
      const key = (left ?? right)!;
      entries++;
      await write({ objectId: key.objectId, version: key.version, class: cls, a: left, b: right });
    }
  }
  const t3 = performance.now();
  return {
    entries,
    stats: { ...emptyStats('merge'), rowsA: ra.length, rowsB: rb.length, scannedA: ra.length, scannedB: rb.length },
    phases: { export: t1 - t0, sort: t2 - t1, mergeClassify: t3 - t2 },
  };
}
