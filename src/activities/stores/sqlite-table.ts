import Database from 'better-sqlite3';
import { assertContent } from './fingerprint.js';
import { SqliteKeyspace } from './sqlite-keyspace.js';
import { DEFAULT_COLUMNS, quoteIdentifier, type ColumnMap } from './sql.js';
import type { KeyRange, ObjectKey, ObjectMeta, ObjectStoreAdapter, SegmentSummary, StoredObject } from './types.js';

export interface SqliteTableConfig {
  path: string;
  table: string;
  columns?: Partial<ColumnMap>;
  /** create the table when missing (demo, tests) */
  create?: boolean;
}

type Row = { objectId: string; version: number; size: number; sha256: string; createdAt: number; updatedAt: number; content?: Buffer };

/** Objects in one SQLite table (better-sqlite3); fingerprints are computed inside SQLite by a registered function. */
export class SqliteTableStore implements ObjectStoreAdapter {
  private readonly db: Database.Database;
  private readonly t: string;
  private readonly c: Record<keyof ColumnMap, string>;
  private readonly keys: SqliteKeyspace;

  constructor(private readonly config: SqliteTableConfig) {
    if (config.columns?.sha256 === null) throw new Error(`sqlite table ${config.table}: a sha256 column is required (columns.sha256 may not be null)`);
    const columns = { ...DEFAULT_COLUMNS, ...config.columns };
    this.t = quoteIdentifier(config.table, 'table name');
    this.c = Object.fromEntries(
      Object.entries({ ...columns, sha256: columns.sha256 ?? 'sha256' }).map(([k, v]) => [k, quoteIdentifier(v, `column name for ${k}`)]),
    ) as Record<keyof ColumnMap, string>;
    this.db = new Database(config.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    if (config.create) {
      const c = this.c;
      this.db.exec(
        `CREATE TABLE IF NOT EXISTS ${this.t} (${c.objectId} TEXT NOT NULL, ${c.version} INTEGER NOT NULL, ${c.content} BLOB NOT NULL, ${c.size} INTEGER NOT NULL, ${c.sha256} TEXT NOT NULL, ${c.createdAt} INTEGER NOT NULL, ${c.updatedAt} INTEGER NOT NULL, PRIMARY KEY (${c.objectId}, ${c.version})) WITHOUT ROWID`,
      );
    }
    this.keys = new SqliteKeyspace(this.db, { table: this.t, ...this.c });
  }

  describe(): string {
    return `sqlite ${this.config.path} table ${this.config.table}`;
  }

  scan(range: KeyRange, pageSize: number): AsyncIterable<ObjectMeta[]> {
    return this.keys.scan(range, pageSize);
  }

  async summarize(range: KeyRange): Promise<SegmentSummary> {
    return this.keys.summarize(range);
  }

  async splitPoints(range: KeyRange, parts: number): Promise<ObjectKey[]> {
    return this.keys.splitPoints(range, parts);
  }

  async get(keys: ObjectKey[]): Promise<StoredObject[]> {
    const stmt = this.db.prepare(`SELECT ${this.keys.selectMeta}, ${this.c.content} AS content FROM ${this.t} WHERE ${this.c.objectId} = ? AND ${this.c.version} = ?`);
    return keys.map((k) => stmt.get(k.objectId, k.version) as Row | undefined).filter((r): r is Row & { content: Buffer } => Boolean(r));
  }

  async put(objects: StoredObject[]): Promise<void> {
    objects.forEach(assertContent);
    const c = this.c;
    const stmt = this.db.prepare(
      `INSERT INTO ${this.t} (${c.objectId}, ${c.version}, ${c.content}, ${c.size}, ${c.sha256}, ${c.createdAt}, ${c.updatedAt}) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (${c.objectId}, ${c.version}) DO UPDATE SET ${c.content} = excluded.${c.content}, ${c.size} = excluded.${c.size}, ${c.sha256} = excluded.${c.sha256}, ${c.createdAt} = excluded.${c.createdAt}, ${c.updatedAt} = excluded.${c.updatedAt}`,
    );
    this.db.transaction(() => {
      for (const o of objects) stmt.run(o.objectId, o.version, o.content, o.size, o.sha256, o.createdAt, o.updatedAt);
    })();
  }

  async delete(keys: ObjectKey[]): Promise<void> {
    const stmt = this.db.prepare(`DELETE FROM ${this.t} WHERE ${this.c.objectId} = ? AND ${this.c.version} = ?`);
    this.db.transaction(() => {
      for (const k of keys) stmt.run(k.objectId, k.version);
    })();
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
