import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { compareIds, rowFingerprint, summarizeRows } from '../../src/activities/stores/fingerprint.js';
import { ObjectStore } from '../../src/activities/stores/object-store.js';
import { PostgresTableStore } from '../../src/activities/stores/postgres-table.js';
import { SqliteTableStore } from '../../src/activities/stores/sqlite-table.js';
import {
  manyObjects,
  metaOf,
  object,
  scanAll,
  sorted,
  TRICKY_IDS,
  useTempDirs,
  usePostgres,
} from '../support/stores.js';

const tempDir = useTempDirs();
const { pool, runId } = usePostgres();

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
