import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { incrementalDiff, type CheckSegment } from '../src/activities/dual-write/incremental.js';
import { diffStores, type DriftEntry } from '../src/activities/stores/diff.js';
import { ObjectStore } from '../src/activities/stores/object-store.js';
import { SqliteTableStore } from '../src/activities/stores/sqlite-table.js';
import type { ObjectKey, ObjectStoreAdapter } from '../src/activities/stores/types.js';
import { DETECTION_DEFAULTS } from '../src/shared/constants.js';
import { objectId, seedDrift } from '../src/demo/seed-drift.js';
import { storedObject } from './support/dual-write.js';

/**
 * Incremental detection (incrementalDiff) on real stores: a SQLite table with stored fingerprints ↔ an object
 * store. After every change the incremental re-check must report exactly what a full streaming merge reports.
 */
const root = mkdtempSync(join(tmpdir(), 'dw-incremental-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** Counts the calls that read rows (fingerprint lists, metadata): a re-check without changes makes none. */
function counted(store: ObjectStoreAdapter) {
  const calls = { summarizeRanges: 0, rowReads: 0 };
  const s = store as ObjectStoreAdapter & Record<string, unknown>;
  const wrap = (name: 'fingerprintLists' | 'metaByFingerprint' | 'getMeta' | 'scan', counter: 'rowReads') => {
    const f = (s[name] as (...args: unknown[]) => unknown).bind(store);
    s[name] = ((...args: unknown[]) => (calls[counter]++, f(...args))) as never;
  };
  for (const name of ['fingerprintLists', 'metaByFingerprint', 'getMeta', 'scan'] as const) wrap(name, 'rowReads');
  const sum = s.summarizeRanges!.bind(store);
  s.summarizeRanges = (ranges: Parameters<typeof sum>[0]) => (calls.summarizeRanges++, sum(ranges));
  return calls;
}

async function pair(objects: number, drift: Record<string, number>) {
  const dir = join(root, `p${n++}`);
  mkdirSync(dir, { recursive: true });
  const a = new SqliteTableStore({
    path: join(dir, 'a.sqlite'),
    table: 'objects',
    create: true,
    columns: { fingerprint: 'row_fp' },
  });
  const b = await ObjectStore.open(join(dir, 'store'));
  const injected = await seedDrift(a, b, { objects, drift, newer: 'a' });
  return { a, b, injected, callsA: counted(a), callsB: counted(b) };
}

const options = (segmentRows = 64) => ({
  segmentRows,
  windowSegments: 16,
  readRows: DETECTION_DEFAULTS.readRows,
});

const keyOf = (e: DriftEntry) => `${e.objectId}@${e.version}:${e.class}`;
const flat = (segments: CheckSegment[]) => segments.flatMap((s) => s.drift.map(keyOf));
async function truth(a: ObjectStoreAdapter, b: ObjectStoreAdapter): Promise<string[]> {
  const out: string[] = [];
  for await (const e of diffStores(a, b, {}, { mergeOnly: true })) out.push(keyOf(e));
  return out;
}

const object = storedObject;
const key = (i: number, version = 1): ObjectKey => ({ objectId: objectId(i), version });

describe('incremental dual-write detection', () => {
  it('a first pass finds what a full merge finds; a re-check without changes reads only summaries', async () => {
    const p = await pair(5000, { missing_in_a: 5, missing_in_b: 5, content_mismatch: 5, metadata_mismatch: 5 });
    const first = await incrementalDiff(p.a, p.b, undefined, options());
    expect(flat(first.segments)).toEqual(await truth(p.a, p.b));
    expect(flat(first.segments)).toHaveLength(20);
    expect(first.segments.at(-1)!.to).toBeUndefined();
    expect(first.stats.segments).toBeGreaterThan(60);

    p.callsA.rowReads = p.callsB.rowReads = 0;
    const again = await incrementalDiff(p.a, p.b, first.segments, options());
    expect(flat(again.segments)).toEqual(flat(first.segments));
    expect(again.stats).toMatchObject({
      changed: 0,
      compared: 0,
      reused: first.segments.length,
      scannedA: 0,
      scannedB: 0,
    });
    expect(p.callsA.rowReads + p.callsB.rowReads).toBe(0);
    expect(again.stats.rowsA).toBe(5000 - 5);
    expect(again.stats.rowsB).toBe(5000 - 5);
  });

  it('finds every injected change (content, metadata, insert, delete, on either side) and forgets what was repaired', async () => {
    const p = await pair(6000, { content_mismatch: 3, missing_in_b: 3 });
    let state = (await incrementalDiff(p.a, p.b, undefined, options())).segments;
    expect(flat(state)).toHaveLength(6);
    const total = state.length;

    // a: content change, delete; b: metadata change, insert of a key a lacks; both: an equal new object
    const [x] = await p.a.get([key(100)]);
    await p.a.put([object(x!.objectId, x!.version, 'changed on a only', x!.updatedAt + 1)]);
    await p.a.delete([key(2500)]);
    const [y] = await p.b.get([key(4100)]);
    await p.b.put([{ ...y!, updatedAt: y!.updatedAt + 5 }]);
    await p.b.put([object('obj-00003000-new', 1, 'only in b')]);
    const both = object('obj-00005000-new', 1, 'in both');
    await p.a.put([both]);
    await p.b.put([both]);
    // and a repair of one earlier difference: the copy b lacked arrives
    const lacked = p.injected.find((d) => d.class === 'missing_in_b')!;
    await p.b.put(await p.a.get([lacked]));

    const r = await incrementalDiff(p.a, p.b, state, options());
    expect(flat(r.segments)).toEqual(await truth(p.a, p.b));
    expect(flat(r.segments)).toEqual(
      expect.arrayContaining([
        `${objectId(100)}@1:content_mismatch`,
        `${objectId(2500)}@1:missing_in_a`,
        `${objectId(4100)}@1:metadata_mismatch`,
        'obj-00003000-new@1:missing_in_a',
      ]),
    );
    expect(flat(r.segments)).not.toContain(`${lacked.objectId}@${lacked.version}:missing_in_b`);
    // only the segments the changes fell in were looked at again
    expect(r.stats.changed).toBeLessThanOrEqual(6);
    expect(r.stats.reused).toBeGreaterThanOrEqual(total - 6);
    state = r.segments;

    // a change on b alone to a row that already differs (content mismatch stays, its metadata moves)
    const differing = p.injected.find((d) => d.class === 'content_mismatch')!;
    const [z] = await p.b.get([differing]);
    await p.b.put([object(z!.objectId, z!.version, 'another b content', z!.updatedAt + 9)]);
    const r2 = await incrementalDiff(p.a, p.b, state, options());
    expect(flat(r2.segments)).toEqual(await truth(p.a, p.b));
    expect(r2.stats.changed).toBe(1);
    expect(
      r2.segments
        .find((s) => s.drift.some((e) => e.objectId === z!.objectId))!
        .drift.find((e) => e.objectId === z!.objectId)!.b!.updatedAt,
    ).toBe(z!.updatedAt + 9);
  });

  it('a segment that grew by inserts is split; deleting every row of a segment leaves a correct empty one', async () => {
    const p = await pair(2000, {});
    const state = (await incrementalDiff(p.a, p.b, undefined, options())).segments;
    expect(flat(state)).toEqual([]);
    // 600 new keys inside one segment's range, on a only (every one missing in b)
    const fresh = Array.from({ length: 600 }, (_, i) =>
      object(`${objectId(1000)}-x${String(i).padStart(4, '0')}`, 1, `n${i}`),
    );
    await p.a.put(fresh);
    // and every row of the first segment gone from both sides
    const firstRows = Array.from({ length: 64 }, (_, i) => key(i));
    await p.a.delete(firstRows);
    await p.b.delete(firstRows);
    const r = await incrementalDiff(p.a, p.b, state, options());
    expect(flat(r.segments)).toEqual(await truth(p.a, p.b));
    expect(flat(r.segments)).toHaveLength(600);
    expect(r.segments.length).toBeGreaterThan(state.length + 5);
    // the split segments are comparable on the next pass: nothing changed, nothing compared
    const again = await incrementalDiff(p.a, p.b, r.segments, options());
    expect(again.stats).toMatchObject({ changed: 0, compared: 0 });
    expect(flat(again.segments)).toEqual(flat(r.segments));
  });
});
