import { beforeEach, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/activities/digest.js';
import { inRange, rowFingerprint, summarizeRows } from '../../src/activities/stores/fingerprint.js';
import type { KeyRange, ObjectMeta, ObjectStoreAdapter, StoredObject } from '../../src/activities/stores/types.js';
import {
  keyOf,
  manyObjects,
  metaOf,
  object,
  rejection,
  scanAll,
  sorted,
  T0,
  TRICKY_ORDER,
  trickyObjects,
  useStores,
  wipe,
} from '../support/stores.js';

/** One conformance suite for every ObjectStoreAdapter (like kysely's one suite per dialect). */

const { subjects, store } = useStores();

for (const subject of subjects) {
  describe(subject.name, () => {
    let s: ObjectStoreAdapter;
    beforeEach(async () => {
      s = store(subject.name);
      await wipe(s);
    });

    it('describes itself', () => {
      expect(s.describe()).toMatch(/\S/);
    });

    it('round-trips objects through put and get (bytes, metadata, order asked, missing keys left out)', async () => {
      const binary = Buffer.from([0, 1, 2, 255, 254, 0x5c, 0x78, 0x22, 0x7b, 0x2c, 0x7d]);
      const objects = [
        object('r/1', 1),
        object('r/2', 3, ''),
        { ...object('r/3', 1), content: binary, size: binary.length, sha256: sha256(binary) },
      ];
      await s.put(objects);
      const got = await s.get([
        keyOf(objects[2]!),
        { objectId: 'nope', version: 1 },
        keyOf(objects[0]!),
        keyOf(objects[1]!),
      ]);
      expect(got.map(keyOf)).toEqual([objects[2], objects[0], objects[1]].map((o) => keyOf(o!)));
      for (const [i, o] of [objects[2]!, objects[0]!, objects[1]!].entries()) {
        expect(Buffer.isBuffer(got[i]!.content)).toBe(true);
        expect(got[i]!.content.equals(o.content)).toBe(true);
        expect(metaOf(got[i]!)).toEqual(metaOf(o));
      }
      expect(await s.get([])).toEqual([]);
    });

    it('put is an idempotent upsert and delete is idempotent', async () => {
      const objects = trickyObjects();
      await s.put(objects);
      const once = (await scanAll(s)).flat();
      const summary = await s.summarize!({});
      await s.put(objects);
      await s.put([objects[0]!, objects[0]!]);
      expect((await scanAll(s)).flat()).toEqual(once);
      expect(await s.summarize!({})).toEqual(summary);

      const changed = object(objects[0]!.objectId, objects[0]!.version, 'new content', T0, T0 + 5);
      await s.put([changed]);
      const [got] = await s.get([keyOf(changed)]);
      expect(metaOf(got!)).toEqual(metaOf(changed));
      expect(got!.content.toString()).toBe('new content');

      const gone = [keyOf(objects[1]!), keyOf(objects[2]!)];
      await s.delete(gone);
      await s.delete(gone);
      await s.delete([{ objectId: 'never-there', version: 1 }]);
      await s.delete([]);
      expect(await s.get(gone)).toEqual([]);
      expect((await scanAll(s)).flat()).toHaveLength(once.length - 2);
    });

    it('put refuses content that does not match its sha256 or size, and writes nothing of the batch', async () => {
      const good = object('good', 1);
      const badSha = { ...object('bad-sha', 1), sha256: sha256(Buffer.from('something else')) };
      const badSize = { ...object('bad-size', 1), size: 3 };
      expect((await rejection(s.put([good, badSha]))).message).toMatch(/bad-sha@1: content sha256 .* does not match/);
      expect((await rejection(s.put([good, badSize]))).message).toMatch(
        /bad-size@1: content is \d+ bytes, metadata says 3/,
      );
      expect((await scanAll(s)).flat()).toEqual([]);
      expect(await s.get([keyOf(good), keyOf(badSha), keyOf(badSize)])).toEqual([]);
    });

    it('scans in bytewise key order (UTF-8, "C" collation), versions numerically', async () => {
      const objects = trickyObjects();
      await s.put([...objects].reverse());
      const rows = (await scanAll(s, {}, 4)).flat();
      const expected = TRICKY_ORDER.flatMap((id) =>
        (id === 'zero' ? [1] : [1, 2, 10]).map((version) => ({ objectId: id, version })),
      );
      expect(rows.map(keyOf)).toEqual(expected);
      expect(rows.map(keyOf)).toEqual(sorted(objects).map(keyOf));
      expect(rows).toEqual(sorted(objects).map(metaOf));
    });

    it('scans [from, to) page by page without duplicates or misses at page boundaries', async () => {
      const objects = [...trickyObjects(), ...manyObjects(60)];
      await s.put(objects);
      const all = sorted(objects).map(metaOf);
      const ranges: KeyRange[] = [
        {},
        { from: { objectId: 'a', version: 2 } },
        { to: { objectId: 'a_1', version: 2 } },
        { from: { objectId: 'a', version: 2 }, to: { objectId: 'é', version: 1 } },
        { from: { objectId: 'a-0', version: 0 }, to: { objectId: 'obj-0030', version: 2 } },
        { from: { objectId: 'obj-0010', version: 3 }, to: { objectId: 'obj-0010', version: 3 } },
        { from: { objectId: 'zzz', version: 1 }, to: { objectId: 'zzzz', version: 1 } },
      ];
      for (const range of ranges) {
        const expected = all.filter((m) => inRange(m, range));
        for (const pageSize of [1, 2, 3, 7, expected.length || 1, expected.length + 1, 1000]) {
          const pages = await scanAll(s, range, pageSize);
          expect(pages.every((p) => p.length >= 1 && p.length <= pageSize)).toBe(true);
          expect(pages.slice(0, -1).every((p) => p.length === pageSize)).toBe(true);
          expect(pages.flat()).toEqual(expected);
        }
      }
    });

    it('summarizes a range to summarizeRows() of the rows it scans', async () => {
      expect(await s.summarize!({})).toEqual({ count: 0, h1: '0', h2: '0' });
      const objects = [...trickyObjects(), ...manyObjects(40)];
      await s.put(objects);
      for (const range of [
        {},
        { from: { objectId: 'a', version: 2 }, to: { objectId: 'obj-0020', version: 1 } },
        { to: { objectId: 'a', version: 1 } },
        { from: { objectId: 'é', version: 2 } },
      ]) {
        const scanned = (await scanAll(s, range, 5)).flat();
        expect(await s.summarize!(range)).toEqual(summarizeRows(scanned));
        expect(await s.summarize!(range)).toEqual(summarizeRows(objects.filter((o) => inRange(o, range)).map(metaOf)));
      }
    });

    it('summarize changes when one field of one row changes, and comes back when it is restored', async () => {
      const objects = trickyObjects();
      await s.put(objects);
      const base = await s.summarize!({});
      const target = objects.find((o) => o.objectId === 'é' && o.version === 2)!;
      const variants: [string, StoredObject][] = [
        [
          'sha256 (same size, other bytes)',
          object(
            target.objectId,
            target.version,
            target.content.toString().replace('#', '!'),
            target.createdAt,
            target.updatedAt,
          ),
        ],
        [
          'size and sha256',
          object(target.objectId, target.version, `${target.content.toString()}+`, target.createdAt, target.updatedAt),
        ],
        ['createdAt', { ...target, createdAt: target.createdAt + 1 }],
        ['updatedAt', { ...target, updatedAt: target.updatedAt - 1 }],
      ];
      for (const [field, variant] of variants) {
        expect(variant.content.length === target.content.length || field.startsWith('size')).toBe(true);
        await s.put([variant]);
        const changed = await s.summarize!({});
        expect(changed.count, field).toBe(base.count);
        expect(changed, field).not.toEqual(base);
        expect(changed, field).toEqual(summarizeRows((await scanAll(s)).flat()));
        await s.put([target]);
        expect(await s.summarize!({}), field).toEqual(base);
      }
      // size alone cannot differ through put(); tamper with the stored metadata instead
      await subject.tamperSize(target, target.size + 1);
      const tampered = await s.summarize!({});
      expect(tampered).not.toEqual(base);
      expect(tampered).toEqual(summarizeRows((await scanAll(s)).flat()));
      await subject.tamperSize(target, target.size);
      expect(await s.summarize!({})).toEqual(base);
    });

    it('stepKeys returns the keys every `step` rows from the start of the range, at most `max`', async () => {
      expect(await s.stepKeys!({}, 4, 10)).toEqual([]);
      const objects = [...trickyObjects(), ...manyObjects(90)];
      await s.put(objects);
      const all = sorted(objects).map(keyOf);
      const ranges: KeyRange[] = [
        {},
        { from: { objectId: 'a', version: 2 }, to: { objectId: 'obj-0050', version: 1 } },
        { from: { objectId: 'obj-0010', version: 1 } },
      ];
      for (const range of ranges) {
        const inside = all.filter((k) => inRange(k, range));
        for (const step of [1, 2, 3, 7, 64, inside.length]) {
          for (const max of [1, 5, 1000]) {
            const expected = inside.filter((_, i) => i > 0 && i % step === 0).slice(0, max);
            expect(await s.stepKeys!(range, step, max), `step ${step} max ${max} ${JSON.stringify(range)}`).toEqual(
              expected,
            );
          }
        }
      }
    });

    it('summarizeRanges and fingerprintLists agree with summarize and rowFingerprint, range by range', async () => {
      const objects = [...trickyObjects(), ...manyObjects(60)];
      await s.put(objects);
      const all = sorted(objects).map(metaOf);
      const cuts = [all[5]!, all[6]!, all[30]!, { objectId: 'obj-0030', version: 2 }, all[all.length - 3]!].map(keyOf);
      const ranges: KeyRange[] = [
        { to: cuts[0] },
        ...cuts.slice(0, -1).map((c, i) => ({ from: c, to: cuts[i + 1] })),
        { from: cuts[cuts.length - 1] },
      ];
      const summaries = await s.summarizeRanges!(ranges);
      expect(summaries).toHaveLength(ranges.length);
      for (const [i, r] of ranges.entries())
        expect(summaries[i], JSON.stringify(r)).toEqual(summarizeRows(all.filter((m) => inRange(m, r))));
      expect(summaries.reduce((n, x) => n + x.count, 0)).toBe(all.length);
      // two separate ranges, an empty one between them
      const picked = [
        ranges[1]!,
        { from: { objectId: 'zz-none', version: 1 }, to: { objectId: 'zz-none', version: 2 } },
        ranges[4]!,
      ];
      expect(await s.fingerprintLists!(picked)).toEqual(
        picked.map((r) =>
          all
            .filter((m) => inRange(m, r))
            .map((m) => String(rowFingerprint(m)))
            .join(','),
        ),
      );
      expect((await s.fingerprintLists!(picked))[1]).toBe('');
      expect(await s.fingerprintLists!([])).toEqual([]);
      expect(await s.summarizeRanges!([])).toEqual([]);
    });

    it('metaByFingerprint returns the rows of each range whose fingerprint is asked for, and nothing else', async () => {
      const objects = [...trickyObjects(), ...manyObjects(60)];
      await s.put(objects);
      const all = sorted(objects).map(metaOf);
      const fp = (m: ObjectMeta) => String(rowFingerprint(m));
      const inner = { from: keyOf(all[10]!), to: keyOf(all[40]!) };
      const probes = [
        // two of the range's rows, one row outside it, one fingerprint nothing has
        { range: inner, fingerprints: [fp(all[12]!), fp(all[39]!), fp(all[40]!), '12345'] },
        // open-ended ranges (their own statements in Postgres)
        { range: { to: keyOf(all[3]!) }, fingerprints: [fp(all[0]!)] },
        { range: { from: keyOf(all[all.length - 2]!) }, fingerprints: [fp(all[all.length - 1]!), fp(all[0]!)] },
      ];
      const found = await s.metaByFingerprint!(probes);
      expect(sorted(found)).toEqual(sorted([all[12]!, all[39]!, all[0]!, all[all.length - 1]!]));
      expect(await s.metaByFingerprint!([])).toEqual([]);
      expect(await s.metaByFingerprint!([{ range: inner, fingerprints: [] }])).toEqual([]);
    });

    it('getMeta returns the metadata of the keys that exist, in the order asked', async () => {
      const objects = trickyObjects();
      await s.put(objects);
      const keys = [keyOf(objects[3]!), { objectId: 'nope', version: 1 }, keyOf(objects[0]!)];
      expect(await s.getMeta(keys)).toEqual([metaOf(objects[3]!), metaOf(objects[0]!)]);
      expect(await s.getMeta([])).toEqual([]);
    });

    if (subject.withNames) {
      const withNames = subject.withNames;
      it('rejects invalid table and column names in the constructor, naming them', () => {
        for (const bad of ['objects; drop table x', '1abc', 'a"b', 'x.y.z', '']) {
          expect(() => withNames({ table: bad })).toThrow(`invalid table name "${bad}"`);
        }
        for (const bad of ['size; drop table x', '1abc']) {
          expect(() => withNames({ column: bad })).toThrow(`"${bad}"`);
        }
      });
    }
  });
}
