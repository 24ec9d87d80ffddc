import { beforeAll, describe, expect, it } from 'vitest';
import { summarizeRows } from '../../src/activities/stores/fingerprint.js';
import type { KeyRange } from '../../src/activities/stores/types.js';
import { keyOf, manyObjects, metaOf, scanAll, trickyObjects, useStores, wipe } from '../support/stores.js';

/**
 * The cross-adapter checks a reconciler relies on: the same rows scan identically and summarise to the same numbers
 * in every adapter, and those numbers are summarizeRows() of the scanned metadata.
 */

const { stores, store } = useStores();

describe('all adapters agree', () => {
  const objects = [...trickyObjects(), ...manyObjects(150)];
  beforeAll(async () => {
    for (const s of stores.values()) {
      await wipe(s);
      await s.put(objects);
    }
  });

  it('scan identically, page for page', async () => {
    const reference = await scanAll(store('sqlite-table'), {}, 16);
    expect(reference.flat()).toHaveLength(objects.length);
    for (const [name, s] of stores) expect(await scanAll(s, {}, 16), name).toEqual(reference);
  });

  it('summarize to the same numbers, equal to summarizeRows() of the scanned rows', async () => {
    const ranges: KeyRange[] = [
      {},
      { from: { objectId: 'B', version: 2 }, to: { objectId: 'obj-0100', version: 2 } },
      { from: { objectId: 'obj-0042', version: 1 } },
      { to: { objectId: 'é', version: 10 } },
    ];
    for (const range of ranges) {
      const expected = summarizeRows((await scanAll(store('sqlite-table'), range, 50)).flat());
      expect(expected.count).toBeGreaterThan(0);
      for (const [name, s] of stores)
        expect(await s.summarize!(range), `${name} ${JSON.stringify(range)}`).toEqual(expected);
    }
  });

  it('cut ranges at the same keys and sum the same segments', async () => {
    const range = { from: { objectId: 'a', version: 2 } };
    const reference = await store('sqlite-table').stepKeys!(range, 16, 100);
    expect(reference.length).toBeGreaterThan(3);
    for (const [name, s] of stores) expect(await s.stepKeys!(range, 16, 100), name).toEqual(reference);
    const ranges = [
      { from: range.from, to: reference[0] },
      ...reference.map((k, i) => ({ from: k, to: reference[i + 1] })),
    ];
    const sums = await store('sqlite-table').summarizeRanges!(ranges);
    for (const [name, s] of stores) expect(await s.summarizeRanges!(ranges), name).toEqual(sums);
    // the same fingerprint lists, byte for byte: equal segments compare as equal strings
    const lists = await store('sqlite-table').fingerprintLists!(ranges);
    for (const [name, s] of stores) expect(await s.fingerprintLists!(ranges), name).toEqual(lists);
  });

  it('return the same bytes', async () => {
    const keys = objects.filter((_, i) => i % 5 === 0).map(keyOf);
    const reference = await store('sqlite-table').get(keys);
    expect(reference).toHaveLength(keys.length);
    for (const [name, s] of stores) {
      const got = await s.get(keys);
      expect(got.map(metaOf), name).toEqual(reference.map(metaOf));
      expect(
        got.every((o, i) => o.content.equals(reference[i]!.content)),
        name,
      ).toBe(true);
    }
  });
});
