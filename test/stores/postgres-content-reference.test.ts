import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { beforeEach, describe, expect, inject, it } from 'vitest';
import { sha256 } from '../../src/activities/digest.js';
import { StoreFactory } from '../../src/activities/stores/index.js';
import { PostgresTableStore } from '../../src/activities/stores/postgres-table.js';
import { StoreConfigError, type ObjectKey } from '../../src/activities/stores/types.js';
import { ErrorType } from '../../src/shared/constants.js';
import { objectStoreConfigSchema } from '../../src/shared/schemas.js';
import { keyOf, object, rejection, useStores } from '../support/stores.js';

// the 'postgres-table' subject's table holds content as bytea
const {
  postgres: { pool, runId },
  postgresTable: pgTable,
  tempDir,
} = useStores(['postgres-table']);

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
