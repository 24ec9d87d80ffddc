import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  diffStores,
  type DiffStats,
  type DriftEntry,
  unmatchedFingerprints,
} from '../../src/activities/stores/diff.js';
import { inRange } from '../../src/activities/stores/fingerprint.js';
import { ObjectStore } from '../../src/activities/stores/object-store.js';
import { PostgresTableStore } from '../../src/activities/stores/postgres-table.js';
import { SqliteTableStore } from '../../src/activities/stores/sqlite-table.js';
import type { ObjectStoreAdapter } from '../../src/activities/stores/types.js';
import { DETECTION_DEFAULTS } from '../../src/shared/constants.js';
import {
  keyOf,
  manyObjects,
  object,
  scanAll,
  sorted,
  trickyObjects,
  usePostgres,
  useTempDirs,
} from '../support/stores.js';

const tempDir = useTempDirs();
const { pool, runId } = usePostgres();

describe('diffStores', () => {
  const collect = async (it: AsyncIterable<DriftEntry>) => {
    const out: DriftEntry[] = [];
    for await (const e of it) out.push(e);
    return out;
  };

  it('unmatchedFingerprints is the multiset difference of two lists both ways, however they overlap', () => {
    const naive = (a: string[], b: string[]): [string[], string[]] => {
      const rest = [...b];
      const onlyA = a.filter((f) => {
        const i = rest.indexOf(f);
        if (i === -1) return true;
        rest.splice(i, 1);
        return false;
      });
      return [onlyA.sort(), rest.sort()];
    };
    const check = (a: string[], b: string[]) => {
      const [x, y] = unmatchedFingerprints(a.join(','), b.join(','));
      expect([x.sort(), y.sort()], `${a.join(',')} | ${b.join(',')}`).toEqual(naive(a, b));
    };
    // prefixes of one another, shared digits across a comma, signs, empties, duplicates
    check([], []);
    check(['1'], []);
    check([], ['-1']);
    check(['12', '34'], ['12', '345']);
    check(['12', '345'], ['12', '34']);
    check(['1', '2'], ['1', '2', '3']);
    check(['0', '1', '2'], ['1', '2']);
    check(['5', '6', '7'], ['5', '7']);
    check(['-12', '3'], ['12', '3']);
    check(['7', '7', '8'], ['7', '8', '8']);
    check(['11', '1'], ['1', '11']);
    // random lists: a common base with rows dropped, added and changed on either side
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const fp = () => String(Math.floor((random() - 0.5) * 2 ** 40)).slice(0, 1 + Math.floor(random() * 12));
    for (let n = 0; n < 500; n++) {
      const base = Array.from({ length: Math.floor(random() * 60) }, fp);
      const edit = (xs: string[]) =>
        xs.flatMap((x) => {
          const r = random();
          return r < 0.05 ? [] : r < 0.1 ? [fp()] : r < 0.13 ? [x, fp()] : [x];
        });
      check(edit(base), edit(base));
    }
  });

  it('bisect, at any segment and window size, finds exactly what the streaming merge finds, in key order', async () => {
    const table = `diff_${runId}`;
    const base = [...trickyObjects(), ...manyObjects(300)];
    const pgStore = await PostgresTableStore.open({ pool, table, create: true, columns: { fingerprint: 'fp' } });
    const objectStore = await ObjectStore.open(join(tempDir(), 'diff-objects'));
    const sqlite = new SqliteTableStore({ path: join(tempDir(), 'diff.sqlite'), table: 'objects', create: true });
    try {
      for (const s of [pgStore, objectStore, sqlite]) await s.put(base);
      const at = (i: number) => sorted(base)[i]!;
      // each store drifts differently, so every pair has every class in both directions
      await pgStore.delete([keyOf(at(3)), keyOf(at(200))]);
      await pgStore.put([object(at(50).objectId, at(50).version, 'changed in pg')]);
      await objectStore.delete([keyOf(at(0)), keyOf(at(base.length - 1))]);
      await objectStore.put([{ ...at(120), updatedAt: at(120).updatedAt + 1 }, object('only-in-object-store', 1)]);
      await sqlite.put([{ ...at(121), createdAt: 0 }, object(at(7).objectId, at(7).version, 'changed in sqlite')]);
      await sqlite.delete([keyOf(at(150))]);
      const pairs: Array<[ObjectStoreAdapter, ObjectStoreAdapter]> = [
        [pgStore, objectStore],
        [objectStore, pgStore],
        [pgStore, sqlite],
        [sqlite, objectStore],
      ];
      for (const [x, y] of pairs) {
        const merged = await collect(diffStores(x, y, {}, { mergeOnly: true, pageSize: 7 }));
        expect(new Set(merged.map((e) => e.class))).toEqual(
          new Set(['missing_in_a', 'missing_in_b', 'content_mismatch', 'metadata_mismatch']),
        );
        expect(merged.map(keyOf)).toEqual(sorted(merged.map(keyOf)));
        for (const [segmentRows, windowSegments] of [
          [1, 1],
          [3, 2],
          [16, 4],
          [64, 4096],
          [10_000, 1],
        ] as const) {
          const label = `${x.describe()} vs ${y.describe()}, segments of ${segmentRows}, ${windowSegments} per window`;
          expect(await collect(diffStores(x, y, {}, { segmentRows, windowSegments, pageSize: 2 })), label).toEqual(
            merged,
          );
          expect(
            await collect(diffStores(x, y, {}, { segmentRows, windowSegments, readRows: 1 })),
            `${label}, one segment per read`,
          ).toEqual(merged);
          // every window after the first compares lists only / never does
          expect(
            await collect(diffStores(x, y, {}, { segmentRows, windowSegments, listAbove: 0, pageSize: 3 })),
            `${label}, lists`,
          ).toEqual(merged);
          expect(
            await collect(diffStores(x, y, {}, { segmentRows, windowSegments, listAbove: 1 })),
            `${label}, checksums`,
          ).toEqual(merged);
          const range = { from: keyOf(at(40)), to: keyOf(at(160)) };
          expect(
            await collect(diffStores(x, y, range, { segmentRows, windowSegments })),
            `${label} in a range`,
          ).toEqual(merged.filter((e) => inRange(e, range)));
        }
      }
      // equal sides: segment summaries only, no row streamed
      let stats: DiffStats | undefined;
      expect(await collect(diffStores(pgStore, pgStore, {}, { onProgress: (s) => (stats = { ...s }) }))).toEqual([]);
      const rows = (await scanAll(pgStore)).flat().length;
      expect(stats).toEqual({
        mode: 'bisect',
        summaries: 2 * Math.ceil(rows / DETECTION_DEFAULTS.segmentRows),
        scannedA: 0,
        scannedB: 0,
        listedA: 0,
        listedB: 0,
        listBytesA: 0,
        listBytesB: 0,
        rowsA: rows,
        rowsB: rows,
      });
    } finally {
      await Promise.all([objectStore.close(), sqlite.close()]);
      await pool.query(`DROP TABLE IF EXISTS "${table}"`);
    }
  });
});
