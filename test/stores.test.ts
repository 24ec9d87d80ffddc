import { DETECTION_DEFAULTS, ErrorType } from '../src/shared/constants.js';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import {
  compareIds,
  compareKeys,
  inRange,
  rowFingerprint,
  summarizeRows,
} from '../src/activities/stores/fingerprint.js';
import { sha256 } from '../src/activities/digest.js';
import { diffStores, type DiffStats, type DriftEntry, unmatchedFingerprints } from '../src/activities/stores/diff.js';
import { BlobDir } from '../src/activities/stores/blob-dir.js';
import { StoreFactory } from '../src/activities/stores/index.js';
import { ObjectStore } from '../src/activities/stores/object-store.js';
import { isConnectionError, PostgresTableStore } from '../src/activities/stores/postgres-table.js';
import { SqliteTableStore } from '../src/activities/stores/sqlite-table.js';
import {
  StoreConfigError,
  type KeyRange,
  type ObjectKey,
  type ObjectMeta,
  type ObjectStoreAdapter,
  type StoredObject,
} from '../src/activities/stores/types.js';
import { ensurePostgres } from '../src/dev/postgres.js';
import { freePort } from '../src/dev/ports.js';
import { objectStoreConfigSchema } from '../src/shared/schemas.js';

/**
 * One conformance suite for every ObjectStoreAdapter (like kysely's one suite per dialect), then the
 * cross-adapter checks a reconciler relies on: the same rows scan identically and summarise to the same numbers
 * everywhere, and those numbers are summarizeRows() of the scanned metadata.
 */

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'runbook-stores-'));
  dirs.push(dir);
  return dir;
}

const runId = `${process.pid}_${Date.now() % 1e6}`;
const pgTable = `objs_${runId}`;
const pgTableNoSha = `objs_nosha_${runId}`;
const pgTableFp = `objs_fp_${runId}`;
const pgTableRef = `objs_ref_${runId}`;
let pool: pg.Pool;
/** application_name of this file's pool: the connection test kills only these connections */
const poolName = `stores_test_${runId}`;

interface Subject {
  name: string;
  open(): Promise<ObjectStoreAdapter>;
  /** changes one row's recorded size behind the adapter's back (put() cannot: it checks size against content) */
  tamperSize(key: ObjectKey, size: number): Promise<void>;
  /** builds the adapter with a bad table or column name (absent: the adapter takes no names) */
  withNames?(names: { table?: string; column?: string }): unknown;
}

let sqlitePath: string;
let sqliteFpPath: string;
let objectRoot: string;
let referenceRoot: string;

const subjects: Subject[] = [
  {
    name: 'sqlite-table',
    open: async () => new SqliteTableStore({ path: sqlitePath, table: 'objects', create: true }),
    tamperSize: async (k, size) => {
      const db = new Database(sqlitePath);
      db.prepare('UPDATE objects SET size = ? WHERE object_id = ? AND version = ?').run(size, k.objectId, k.version);
      db.close();
    },
    withNames: ({ table, column }) =>
      new SqliteTableStore({
        path: join(tempDir(), 'x.sqlite'),
        table: table ?? 'objects',
        columns: column ? { size: column } : {},
      }),
  },
  {
    name: 'postgres-table',
    open: () => PostgresTableStore.open({ pool, table: pgTable, create: true }),
    tamperSize: async (k, size) => {
      await pool.query(`UPDATE "${pgTable}" SET size = $1 WHERE object_id = $2 AND version = $3`, [
        size,
        k.objectId,
        k.version,
      ]);
    },
    withNames: ({ table, column }) =>
      new PostgresTableStore({ pool, table: table ?? 'objects', columns: column ? { updatedAt: column } : {} }),
  },
  {
    // someone else's table: other column names, no digest column, and a linguistic collation on the id column
    // (the database's default is C.UTF-8, which would hide a missing COLLATE "C")
    name: 'postgres-table (existing table, ICU collation, sha256 computed in Postgres, stored fingerprints)',
    open: async () => {
      const { rowCount } = await pool.query(`SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu'`);
      const collate = rowCount ? 'COLLATE "und-x-icu"' : '';
      await pool.query(
        `CREATE TABLE "${pgTableNoSha}" (id varchar(200) ${collate} NOT NULL, ver bigint NOT NULL, body bytea NOT NULL, bytes integer NOT NULL, made timestamptz NOT NULL, changed timestamptz NOT NULL, PRIMARY KEY (id, ver))`,
      );
      await pool.query(`INSERT INTO "${pgTableNoSha}" VALUES ('pre-existing', 1, 'x', 1, now(), now())`);
      const columns = {
        objectId: 'id',
        version: 'ver',
        content: 'body',
        size: 'bytes',
        sha256: null,
        createdAt: 'made',
        updatedAt: 'changed',
        fingerprint: 'row_fp',
      };
      // an existing table gets its fingerprint column, trigger and index from installFingerprint() (`runbook dual-write prepare`)
      await expect(PostgresTableStore.open({ pool, table: pgTableNoSha, columns })).rejects.toThrow(
        /fingerprint column "row_fp" does not exist; install it with `npx runbook dual-write prepare/,
      );
      await new PostgresTableStore({ pool, table: pgTableNoSha, columns }).installFingerprint();
      const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${pgTableNoSha}" WHERE row_fp IS NULL`);
      expect(rows[0].n).toBe(0);
      return PostgresTableStore.open({ pool, table: pgTableNoSha, columns });
    },
    tamperSize: async (k, size) => {
      await pool.query(`UPDATE "${pgTableNoSha}" SET bytes = $1 WHERE id = $2 AND ver = $3`, [
        size,
        k.objectId,
        k.version,
      ]);
    },
  },
  {
    name: 'postgres-table (stored fingerprints)',
    open: () => PostgresTableStore.open({ pool, table: pgTableFp, create: true, columns: { fingerprint: 'fp' } }),
    // behind the adapter's back: the trigger keeps the fingerprint right
    tamperSize: async (k, size) => {
      await pool.query(`UPDATE "${pgTableFp}" SET size = $1 WHERE object_id = $2 AND version = $3`, [
        size,
        k.objectId,
        k.version,
      ]);
    },
  },
  {
    name: 'postgres-table (content by reference)',
    open: () =>
      PostgresTableStore.open({ pool, table: pgTableRef, create: true, contentReference: { root: referenceRoot } }),
    tamperSize: async (k, size) => {
      await pool.query(`UPDATE "${pgTableRef}" SET size = $1 WHERE object_id = $2 AND version = $3`, [
        size,
        k.objectId,
        k.version,
      ]);
    },
  },
  {
    name: 'sqlite-table (stored fingerprints)',
    open: async () =>
      new SqliteTableStore({ path: sqliteFpPath, table: 'objects', create: true, columns: { fingerprint: 'fp' } }),
    // behind the adapter's back: the trigger clears the stored fingerprint, which is then computed
    tamperSize: async (k, size) => {
      const db = new Database(sqliteFpPath);
      db.prepare('UPDATE objects SET size = ? WHERE object_id = ? AND version = ?').run(size, k.objectId, k.version);
      db.close();
    },
  },
  {
    name: 'object-store',
    open: () => ObjectStore.open(objectRoot),
    tamperSize: async (k, size) => {
      const db = new Database(join(objectRoot, 'index.sqlite'));
      db.prepare('UPDATE objects SET size = ? WHERE object_id = ? AND version = ?').run(size, k.objectId, k.version);
      db.close();
    },
  },
];

const stores = new Map<string, ObjectStoreAdapter>();
const store = (name: string): ObjectStoreAdapter => stores.get(name)!;

beforeAll(async () => {
  sqlitePath = join(tempDir(), 'objects.sqlite');
  sqliteFpPath = join(tempDir(), 'objects-fp.sqlite');
  objectRoot = join(tempDir(), 'object-store');
  referenceRoot = join(tempDir(), 'referenced-blobs');
  pool = new pg.Pool({ connectionString: inject('databaseUrl'), max: 4, application_name: poolName });
  for (const s of subjects) stores.set(s.name, await s.open());
});

afterAll(async () => {
  for (const s of stores.values()) await s.close();
  if (pool) {
    await pool.query(`DROP TABLE IF EXISTS "${pgTable}"`);
    await pool.query(`DROP TABLE IF EXISTS "${pgTableNoSha}"`);
    await pool.query(`DROP TABLE IF EXISTS "${pgTableFp}"`);
    await pool.query(`DROP TABLE IF EXISTS "${pgTableRef}"`);
    await pool.end();
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

// ---- data ----

const T0 = 1_700_000_000_000;

function object(
  objectId: string,
  version: number,
  content = `content of ${objectId}@${version}`,
  createdAt = T0 + version * 1001,
  updatedAt = createdAt + 999,
): StoredObject {
  const bytes = Buffer.from(content);
  return { objectId, version, content: bytes, size: bytes.length, sha256: sha256(bytes), createdAt, updatedAt };
}

/** Ids whose bytewise (UTF-8, "C") order differs from case-insensitive, locale and UTF-16 orders. */
const TRICKY_IDS = ['a', 'B', 'a-1', 'a_1', 'é', '~', 'a/b', 'A', 'a b', 'ｚ', '😀', 'e', 'f'];
/** their bytewise order, written out by hand rather than computed with the function under test */
const TRICKY_ORDER = ['A', 'B', 'a', 'a b', 'a-1', 'a/b', 'a_1', 'e', 'f', 'zero', '~', 'é', 'ｚ', '😀'];

function trickyObjects(): StoredObject[] {
  const out: StoredObject[] = [];
  TRICKY_IDS.forEach((id, i) => {
    for (const v of [10, 1, 2])
      out.push(object(id, v, `${id}#${v}`, T0 + i * 7919 + v, T0 + i * 7919 + v * 1000 + 999));
  });
  // empty content, epoch 0
  out.push(object('zero', 1, '', 0, 1));
  return out;
}

/** n objects with assorted sizes and timestamps, in a shuffled order */
function manyObjects(n: number): StoredObject[] {
  const out: StoredObject[] = [];
  for (let i = 0; i < n; i++) {
    const id = `obj-${String((i * 7) % n).padStart(4, '0')}`;
    out.push(
      object(
        id,
        (i % 3) + 1,
        'x'.repeat(i % 17) + i,
        T0 + i * 12_345 + (i % 1000),
        T0 + i * 12_345 + 86_400_000 + (i % 997),
      ),
    );
  }
  return out;
}

const keyOf = (m: ObjectKey): ObjectKey => ({ objectId: m.objectId, version: m.version });
const metaOf = ({ content: _content, ...meta }: StoredObject): ObjectMeta => meta;

async function scanAll(s: ObjectStoreAdapter, range: KeyRange = {}, pageSize = 1000): Promise<ObjectMeta[][]> {
  const pages: ObjectMeta[][] = [];
  for await (const page of s.scan(range, pageSize)) pages.push(page);
  return pages;
}

async function wipe(s: ObjectStoreAdapter): Promise<void> {
  const rows = (await scanAll(s)).flat();
  await s.delete(rows.map(keyOf));
  expect((await scanAll(s)).flat()).toEqual([]);
}

const sorted = <T extends ObjectKey>(rows: T[]): T[] => [...rows].sort(compareKeys);

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the promise to reject');
}

// ---- the conformance suite, once per adapter ----

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

// ---- the same data in every adapter ----

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

// ---- adapter-specific behaviour ----

describe('object-store blobs', () => {
  let s: ObjectStore;
  let root: string;
  beforeEach(async () => {
    root = join(tempDir(), 'blobs-test');
    s = await ObjectStore.open(root);
    return () => s.close();
  });

  const blobFiles = (): string[] =>
    readdirSync(join(root, 'blobs'), { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile())
      .map((d) => d.name);

  it('lays blobs out by digest and leaves no temporary files', async () => {
    const o = object('one', 1);
    await s.put([o]);
    expect(s.blobPath(o.sha256)).toBe(join(root, 'blobs', o.sha256.slice(0, 2), o.sha256));
    expect(blobFiles()).toEqual([o.sha256]);
  });

  it('throws on get() when a blob is corrupt, and a put of the right content repairs it', async () => {
    const o = object('fragile', 1, 'precious bytes');
    await s.put([o]);
    writeFileSync(s.blobPath(o.sha256), 'precious bytez');
    await expect(s.get([keyOf(o)])).rejects.toThrow(/fragile@1: blob [0-9a-f]{64} is corrupt/);
    writeFileSync(s.blobPath(o.sha256), 'short');
    await expect(s.get([keyOf(o)])).rejects.toThrow(/corrupt/);
    await s.put([o]);
    expect((await s.get([keyOf(o)]))[0]!.content.toString()).toBe('precious bytes');
    rmSync(s.blobPath(o.sha256));
    await expect(s.get([keyOf(o)])).rejects.toThrow(/fragile@1: blob [0-9a-f]{64} is missing/);
  });

  it('keeps a blob shared by two objects until the last one is deleted', async () => {
    const a = object('shared-a', 1, 'same bytes');
    const b = object('shared-b', 7, 'same bytes');
    expect(a.sha256).toBe(b.sha256);
    await s.put([a, b]);
    expect(blobFiles()).toEqual([a.sha256]);
    await s.delete([keyOf(a)]);
    expect(blobFiles()).toEqual([a.sha256]);
    expect((await s.get([keyOf(b)]))[0]!.content.toString()).toBe('same bytes');
    await s.delete([keyOf(b)]);
    expect(blobFiles()).toEqual([]);
  });

  it('writes no blob for a refused batch', async () => {
    await expect(s.put([object('ok', 1), { ...object('bad', 1), size: 1 }])).rejects.toThrow(/bad@1/);
    expect(blobFiles()).toEqual([]);
  });

  it('collects the old blob when an object is overwritten with other content', async () => {
    const v1 = object('doc', 1, 'first');
    const v2 = object('doc', 1, 'second');
    await s.put([v1]);
    await s.put([v2]);
    expect(blobFiles()).toEqual([v2.sha256]);
  });

  it('keeps its index and blobs across reopening', async () => {
    const o = object('durable', 3);
    await s.put([o]);
    await s.close();
    s = new ObjectStore({ root });
    expect((await s.get([keyOf(o)]))[0]!.content.equals(o.content)).toBe(true);
  });
});

describe('read-only opens (detection, dry runs)', () => {
  /** every file in `dir`: name and bytes */
  const files = (dir: string): Record<string, string> =>
    Object.fromEntries(
      readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((d) => d.isFile())
        .map((d) => {
          const path = join(d.parentPath, d.name);
          return [path.slice(dir.length), sha256(readFileSync(path))];
        }),
    );

  it('an object store is read, never created, migrated or written; what is missing is refused naming the fix', async () => {
    const root = join(tempDir(), 'ro-store');
    const objects = manyObjects(30);
    const w = await ObjectStore.open(root);
    await w.put(objects);
    await w.close();
    const before = files(root);
    const r = await ObjectStore.open(root, { readOnly: true });
    expect(await r.summarize({})).toEqual(summarizeRows(objects.map(metaOf)));
    expect(await r.get([keyOf(objects[0]!)])).toHaveLength(1);
    await expect(r.put([object('new', 1)])).rejects.toThrow(/is open read-only/);
    await expect(r.delete([keyOf(objects[0]!)])).rejects.toThrow(/is open read-only/);
    await r.close();
    expect(files(root)).toEqual(before);

    const absent = join(tempDir(), 'no-such-store');
    await expect(ObjectStore.open(absent, { readOnly: true })).rejects.toThrow(
      /index\.sqlite cannot be opened .*`npx runbook dual-write prepare/,
    );
    expect(existsSync(absent)).toBe(false);

    const db = new Database(join(root, 'index.sqlite'));
    db.exec('DROP INDEX objects_key_fp');
    db.close();
    const unprepared = files(root);
    await expect(ObjectStore.open(root, { readOnly: true })).rejects.toThrow(
      /index\.sqlite lacks its index objects_key_fp; .*`npx runbook dual-write prepare/,
    );
    expect(files(root)).toEqual(unprepared);
  });

  it('a SQLite table is read without switching its journal mode or creating anything; a missing file or table is refused', async () => {
    const dir = tempDir();
    const path = join(dir, 'app.sqlite');
    const w = new SqliteTableStore({ path, table: 'objects', create: true });
    await w.put(manyObjects(20));
    await w.close();
    const app = new Database(path);
    app.pragma('journal_mode = DELETE');
    app.close();
    const before = files(dir);
    const r = new SqliteTableStore({ path, table: 'objects', readOnly: true });
    expect((await r.summarize({})).count).toBe(20);
    await expect(r.put([object('new', 1)])).rejects.toThrow(/readonly/);
    await r.close();
    expect(files(dir)).toEqual(before);
    const check = new Database(path);
    expect(check.pragma('journal_mode', { simple: true })).toBe('delete');
    check.close();

    expect(() => new SqliteTableStore({ path: join(dir, 'typo.sqlite'), table: 'objects', readOnly: true })).toThrow(
      StoreConfigError,
    );
    expect(existsSync(join(dir, 'typo.sqlite'))).toBe(false);
    expect(() => new SqliteTableStore({ path, table: 'other', readOnly: true })).toThrow(
      /sqlite table other: no such table/,
    );
  });
});

describe('blob directories', () => {
  it('refuse a digest that is not 64 hex characters before it becomes a path (InvalidDigest, naming the object)', async () => {
    const blobs = new BlobDir(join(tempDir(), 'blobs'));
    for (const bad of ['../../../etc/passwd', 'A'.repeat(64), `${'a'.repeat(63)}/`, ''])
      for (const call of [() => blobs.path(bad, 'obj@1 on store'), () => BlobDir.reference(bad, 'obj@1 on store')]) {
        let error: unknown;
        try {
          call();
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(ApplicationFailure);
        expect((error as ApplicationFailure).type).toBe(ErrorType.InvalidDigest);
        expect((error as ApplicationFailure).nonRetryable).toBe(true);
        expect((error as Error).message).toContain('obj@1 on store');
      }
    await expect(blobs.write('../x', Buffer.from('x'), 'obj@2')).rejects.toThrow(/obj@2/);
    expect(existsSync(join(tempDir(), 'x'))).toBe(false);
  });

  it('private ones write 0600 blobs in 0700 directories, and reuse a blob only when its content is intact', async () => {
    const dir = join(tempDir(), 'private-blobs');
    const blobs = new BlobDir(dir, { private: true });
    const content = Buffer.from('snapshot of an object');
    const digest = sha256(content);
    await blobs.write(digest, content);
    const { statSync } = await import('node:fs');
    expect(statSync(blobs.path(digest)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, digest.slice(0, 2))).mode & 0o777).toBe(0o700);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    writeFileSync(blobs.path(digest), 'tampered');
    await blobs.write(digest, content);
    expect(await blobs.read(digest, content.length, 'obj@1')).toEqual(content);
  });
});

describe('postgres-table content by reference', () => {
  let s: PostgresTableStore;
  let root: string;
  let table: string;
  let tables = 0;
  beforeEach(async () => {
    root = join(tempDir(), 'referenced');
    table = `ref_${runId}_${tables++}`;
    s = await PostgresTableStore.open({ pool, table, create: true, contentReference: { root } });
    return async () => {
      await s.close();
      await pool.query(`DROP TABLE IF EXISTS "${table}"`);
    };
  });

  const blobPath = (sha: string): string => join(root, sha.slice(0, 2), sha);
  const blobFiles = (): string[] =>
    readdirSync(root, { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile())
      .map((d) => d.name);
  const setReference = (k: ObjectKey, ref: string) =>
    pool.query(`UPDATE "${table}" SET content = $1 WHERE object_id = $2 AND version = $3`, [
      ref,
      k.objectId,
      k.version,
    ]);

  it('keeps content as a text reference <sha[0:2]>/<sha> to a blob under root, and leaves no temporary files', async () => {
    const o = object('one', 1);
    await s.put([o]);
    const { rows } = await pool.query(`SELECT content, pg_typeof(content)::text AS type FROM "${table}"`);
    expect(rows).toEqual([{ content: `${o.sha256.slice(0, 2)}/${o.sha256}`, type: 'text' }]);
    expect(existsSync(blobPath(o.sha256))).toBe(true);
    expect(blobFiles()).toEqual([o.sha256]);
    expect(s.describe()).toBe(`postgres table ${table} (content under ${root})`);
  });

  it('throws on get() when a blob is corrupt or missing, naming the object; a put of the right content repairs it', async () => {
    const o = object('fragile', 1, 'precious bytes');
    await s.put([o]);
    writeFileSync(blobPath(o.sha256), 'precious bytez');
    await expect(s.get([keyOf(o)])).rejects.toThrow(/fragile@1: blob [0-9a-f]{64} is corrupt/);
    await s.put([o]);
    expect((await s.get([keyOf(o)]))[0]!.content.toString()).toBe('precious bytes');
    rmSync(blobPath(o.sha256));
    await expect(s.get([keyOf(o)])).rejects.toThrow(/fragile@1: blob [0-9a-f]{64} is missing/);
  });

  it('keeps a blob shared by two rows until the last one is deleted or overwritten', async () => {
    const a = object('shared-a', 1, 'same bytes');
    const b = object('shared-b', 7, 'same bytes');
    const c = object('shared-c', 2, 'same bytes');
    await s.put([a, b, c]);
    expect(blobFiles()).toEqual([a.sha256]);
    await s.delete([keyOf(a)]);
    expect(blobFiles()).toEqual([a.sha256]);
    const other = object('shared-b', 7, 'other bytes');
    await s.put([other]);
    expect(blobFiles().sort()).toEqual([a.sha256, other.sha256].sort());
    expect((await s.get([keyOf(c)]))[0]!.content.toString()).toBe('same bytes');
    await s.delete([keyOf(c)]);
    expect(blobFiles()).toEqual([other.sha256]);
    await s.put([object('shared-b', 7, 'third bytes')]);
    expect(blobFiles()).toEqual([sha256(Buffer.from('third bytes'))]);
  });

  it('never collects a blob a concurrent put (another store on the same table) is about to reference', async () => {
    const other = await PostgresTableStore.open({ pool, table, contentReference: { root } });
    for (let i = 0; i < 20; i++) {
      const a = object(`race-a-${i}`, 1, 'raced bytes');
      const b = object(`race-b-${i}`, 1, 'raced bytes');
      await s.put([a]);
      await Promise.all([s.delete([keyOf(a)]), other.put([b])]);
      expect((await s.get([keyOf(b)]))[0]!.content.toString()).toBe('raced bytes');
      await other.delete([keyOf(b)]);
    }
    expect(blobFiles()).toEqual([]);
  });

  it('writes no blob for a refused batch', async () => {
    await expect(s.put([object('ok', 1), { ...object('bad', 1), size: 1 }])).rejects.toThrow(/bad@1/);
    expect(blobFiles()).toEqual([]);
  });

  it('refuses a reference that is not <sha[0:2]>/<sha> of the row, and never follows it (get or delete)', async () => {
    const o = object('victim', 1);
    const elsewhere = object('elsewhere', 1);
    await s.put([o, elsewhere]);
    const outside = join(root, '..', 'outside');
    writeFileSync(outside, o.content);
    const hex = o.sha256;
    for (const ref of [
      '../outside',
      outside,
      `${hex.slice(0, 2)}/../../outside`,
      `${hex.slice(0, 2)}/${hex}/..`,
      `zz/${hex}`,
      `${hex.slice(0, 2)}/${hex.toUpperCase()}`,
      hex,
    ]) {
      await setReference(o, ref);
      await expect(s.get([keyOf(o)]), ref).rejects.toThrow(
        `victim@1: content reference ${JSON.stringify(ref)} is not a blob path <sha[0:2]>/<sha>`,
      );
    }
    // well formed, but another object's blob
    await setReference(o, `${elsewhere.sha256.slice(0, 2)}/${elsewhere.sha256}`);
    await expect(s.get([keyOf(o)])).rejects.toThrow(
      `victim@1: content reference ${elsewhere.sha256.slice(0, 2)}/${elsewhere.sha256} is not the blob of its sha256 ${o.sha256}`,
    );
    await setReference(o, '../outside');
    await s.delete([keyOf(o)]);
    expect(existsSync(outside)).toBe(true);
    expect((await s.get([keyOf(elsewhere)]))[0]!.content.equals(elsewhere.content)).toBe(true);
  });

  it('refuses configurations it cannot work with', async () => {
    const config = { pool, table, contentReference: { root } };
    expect(() => new PostgresTableStore({ ...config, columns: { sha256: null } })).toThrow(StoreConfigError);
    expect(() => new PostgresTableStore({ ...config, columns: { sha256: null } })).toThrow(
      /contentReference needs a sha256 column/,
    );
    const parsed = objectStoreConfigSchema.safeParse({
      type: 'postgres',
      table,
      columns: { sha256: null },
      contentReference: { root: 'blobs' },
    });
    expect(parsed.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['contentReference', expect.stringMatching(/needs a sha256 column/)],
    ]);
    // a root that does not exist is a wrong path, not an empty store (only `create` makes one)
    const missing = join(root, 'no-such-dir');
    await expect(PostgresTableStore.open({ ...config, contentReference: { root: missing } })).rejects.toThrow(
      `contentReference.root ${missing} is not an existing directory`,
    );
    // a table holding content as bytea
    await expect(PostgresTableStore.open({ pool, table: pgTable, contentReference: { root } })).rejects.toThrow(
      /contentReference needs a text content column, "content" is bytea/,
    );
  });

  it('StoreFactory resolves contentReference.root against the environment file and refuses a bad combination as EnvironmentInvalid', async () => {
    const base = tempDir();
    mkdirSync(join(base, 'blobs'));
    process.env.STORES_TEST_DATABASE_URL = inject('databaseUrl');
    const factory = new StoreFactory();
    try {
      const config = objectStoreConfigSchema.parse({
        type: 'postgres',
        urlEnv: 'STORES_TEST_DATABASE_URL',
        table,
        contentReference: { root: 'blobs' },
      });
      const opened = await factory.open(config, (p) => join(base, p));
      const o = object('via-factory', 1);
      await opened.put([o]);
      expect(existsSync(join(base, 'blobs', o.sha256.slice(0, 2), o.sha256))).toBe(true);
      const bad = { ...config, columns: { sha256: null } };
      const error = await rejection(factory.open(bad, (p) => join(base, p)));
      expect(error).toBeInstanceOf(ApplicationFailure);
      expect((error as ApplicationFailure).type).toBe(ErrorType.EnvironmentInvalid);
      expect((error as ApplicationFailure).nonRetryable).toBe(true);
    } finally {
      await factory.close();
      delete process.env.STORES_TEST_DATABASE_URL;
    }
  });
});

describe('postgres-table connections', () => {
  it('tells connection failures (retried) from statement errors (not retried)', () => {
    expect(
      isConnectionError(
        Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
      ),
    ).toBe(true);
    expect(
      isConnectionError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })),
    ).toBe(true);
    expect(isConnectionError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isConnectionError(Object.assign(new Error('relation "x" does not exist'), { code: '42P01' }))).toBe(false);
    expect(isConnectionError(Object.assign(new Error('duplicate key'), { code: '23505' }))).toBe(false);
    expect(isConnectionError(undefined)).toBe(false);
  });

  it('survives its connections being terminated between calls', async () => {
    const s = store('postgres-table');
    await wipe(s);
    await s.put([object('before', 1)]);
    const admin = new pg.Client({ connectionString: inject('databaseUrl') });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ ok: boolean }>(
        'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1',
        [poolName],
      );
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.every((r) => r.ok)).toBe(true);
    } finally {
      await admin.end();
    }
    await s.put([object('after', 1)]);
    expect((await scanAll(s)).flat().map((m) => m.objectId)).toEqual(['after', 'before']);
  });

  it('survives a Postgres restart between calls (its own embedded server, even with DATABASE_URL set)', async () => {
    const dataDir = tempDir();
    const port = await freePort();
    let server = await ensurePostgres({ dataDir, port, database: 'restart_test', forceEmbedded: true });
    const restartPool = new pg.Pool({ connectionString: server.url, max: 2 });
    try {
      const s = await PostgresTableStore.open({
        pool: restartPool,
        table: 'objects',
        create: true,
        name: 'restart test',
      });
      expect(s.describe()).toBe('postgres table restart test');
      await s.put([object('before', 1)]);
      expect(await s.summarize({})).toEqual(summarizeRows([metaOf(object('before', 1))]));
      await server.stop();
      server = await ensurePostgres({ dataDir, port, database: 'restart_test', forceEmbedded: true });
      await s.put([object('after', 1)]);
      expect((await scanAll(s)).flat()).toEqual([metaOf(object('after', 1)), metaOf(object('before', 1))]);
      await s.close();
    } finally {
      await restartPool.end();
      await server.stop();
    }
  });
});

describe('stored fingerprints', () => {
  it('compareIds orders strings bytewise as UTF-8, like Buffer.compare', () => {
    const ids = [...TRICKY_IDS, 'zero', '\uffff', '\ue000', '\ud7ff', '𐀀', 'a😀', 'a\uffff', '', 'aa', 'a'];
    for (const x of ids)
      for (const y of ids)
        expect(Math.sign(compareIds(x, y)), `${x} ${y}`).toBe(
          Math.sign(Buffer.compare(Buffer.from(x), Buffer.from(y))),
        );
  });

  it('a SQLite table whose fingerprint trigger is missing is refused, naming the fix', () => {
    const path = join(tempDir(), 'no-trigger.sqlite');
    const db = new Database(path);
    db.exec(
      'CREATE TABLE objects (object_id TEXT NOT NULL, version INTEGER NOT NULL, content BLOB NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, fp INTEGER, PRIMARY KEY (object_id, version))',
    );
    db.close();
    expect(() => new SqliteTableStore({ path, table: 'objects', columns: { fingerprint: 'fp' } })).toThrow(
      /trigger objects_dr_fingerprint is missing; install it with `npx runbook dual-write prepare/,
    );
  });

  it('SQLite: other writers leave a NULL or cleared fingerprint, which is computed; put() writes it', async () => {
    const path = join(tempDir(), 'writers.sqlite');
    const s = new SqliteTableStore({ path, table: 'objects', create: true, columns: { fingerprint: 'fp' } });
    try {
      const o = object('mine', 1);
      await s.put([o]);
      const db = new Database(path);
      const fpOf = (id: string) =>
        (db.prepare('SELECT fp FROM objects WHERE object_id = ?').safeIntegers(true).get(id) as { fp: bigint | null })
          .fp;
      expect(fpOf('mine')).toBe(rowFingerprint(o));
      const theirs = object('theirs', 1);
      db.prepare(
        'INSERT INTO objects (object_id, version, content, size, sha256, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ).run(theirs.objectId, 1, theirs.content, theirs.size, theirs.sha256, theirs.createdAt, theirs.updatedAt);
      db.prepare('UPDATE objects SET updated_at = updated_at + 1 WHERE object_id = ?').run('mine');
      expect(fpOf('theirs')).toBeNull();
      expect(fpOf('mine')).toBeNull();
      // an update that changes nothing the fingerprint covers keeps it
      await s.put([o]);
      db.prepare('UPDATE objects SET content = content WHERE object_id = ?').run('mine');
      expect(fpOf('mine')).toBe(rowFingerprint(o));
      db.prepare('UPDATE objects SET updated_at = updated_at + 1 WHERE object_id = ?').run('mine');
      db.close();
      const rows = (await scanAll(s)).flat();
      expect(await s.summarize({})).toEqual(summarizeRows(rows));
      // cleared fingerprints are computed in lists and found by metaByFingerprint
      expect(await s.fingerprintLists([{}])).toEqual([rows.map((m) => String(rowFingerprint(m))).join(',')]);
      expect(
        await s.metaByFingerprint(rows.map((m) => ({ range: {}, fingerprints: [String(rowFingerprint(m))] }))),
      ).toEqual(rows);
      expect(
        sorted(await s.metaByFingerprint([{ range: {}, fingerprints: rows.map((m) => String(rowFingerprint(m))) }])),
      ).toEqual(rows);
    } finally {
      await s.close();
    }
  });

  it('an object-store index written before fingerprints were stored gets them on open', async () => {
    const root = join(tempDir(), 'old-index');
    const s = await ObjectStore.open(root);
    const objects = manyObjects(20);
    await s.put(objects);
    await s.close();
    const db = new Database(join(root, 'index.sqlite'));
    db.exec('DROP TRIGGER objects_fp_invalidate; DROP INDEX objects_key_fp; ALTER TABLE objects DROP COLUMN fp');
    db.close();
    const reopened = await ObjectStore.open(root);
    try {
      expect(await reopened.summarize({})).toEqual(summarizeRows(objects.map(metaOf)));
      const check = new Database(join(root, 'index.sqlite'));
      expect((check.prepare('SELECT count(*) AS n FROM objects WHERE fp IS NULL').get() as { n: number }).n).toBe(0);
      check.close();
    } finally {
      await reopened.close();
    }
  });

  it('Postgres: the trigger keeps the fingerprint right whoever writes, and a dropped trigger is refused', async () => {
    const table = `fp_writers_${runId}`;
    const s = await PostgresTableStore.open({ pool, table, create: true, columns: { fingerprint: 'fp' } });
    try {
      const o = object('x', 1);
      await s.put([o]);
      await pool.query(`UPDATE "${table}" SET updated_at = updated_at + interval '1 second'`);
      const [meta] = await s.getMeta([o]);
      expect(meta!.updatedAt).toBe(o.updatedAt + 1000);
      const { rows } = await pool.query(`SELECT fp::text AS fp FROM "${table}"`);
      expect(BigInt(rows[0].fp)).toBe(rowFingerprint(meta!));
      await pool.query(`ALTER TABLE "${table}" DISABLE TRIGGER "${table}_dr_fp"`);
      await expect(PostgresTableStore.open({ pool, table, columns: { fingerprint: 'fp' } })).rejects.toThrow(
        `trigger "${table}_dr_fp" is missing or disabled`,
      );
    } finally {
      await pool.query(`DROP TABLE IF EXISTS "${table}"`);
    }
  });
});

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
