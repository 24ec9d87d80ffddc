import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../src/activities/digest.js';
import { summarizeRows } from '../../src/activities/stores/fingerprint.js';
import { ObjectStore } from '../../src/activities/stores/object-store.js';
import { SqliteTableStore } from '../../src/activities/stores/sqlite-table.js';
import { StoreConfigError } from '../../src/activities/stores/types.js';
import { keyOf, manyObjects, metaOf, object, useTempDirs } from '../support/stores.js';

const tempDir = useTempDirs();

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
