import Database from 'better-sqlite3';
import { assertContent, rowFingerprint } from './fingerprint.js';
import { DEFAULT_COLUMNS, quoteIdentifier, rangeClause, type ColumnMap } from './sql.js';
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
    const fp = (i: 0 | 1) => (id: string, version: number, sha: string, size: number, created: number, updated: number) =>
      rowFingerprint({ objectId: id, version: Number(version), sha256: sha, size: Number(size), createdAt: Number(created), updatedAt: Number(updated) })[i];
    this.db.function('dr_fp1', { deterministic: true }, fp(0) as never);
    this.db.function('dr_fp2', { deterministic: true }, fp(1) as never);
    if (config.create) {
      const c = this.c;
      this.db.exec(
        `CREATE TABLE IF NOT EXISTS ${this.t} (${c.objectId} TEXT NOT NULL, ${c.version} INTEGER NOT NULL, ${c.content} BLOB NOT NULL, ${c.size} INTEGER NOT NULL, ${c.sha256} TEXT NOT NULL, ${c.createdAt} INTEGER NOT NULL, ${c.updatedAt} INTEGER NOT NULL, PRIMARY KEY (${c.objectId}, ${c.version})) WITHOUT ROWID`,
      );
    }
  }

  describe(): string {
    return `sqlite ${this.config.path} table ${this.config.table}`;
  }

  private metaColumns(): string {
    const c = this.c;
    return `${c.objectId} AS objectId, ${c.version} AS version, ${c.size} AS size, ${c.sha256} AS sha256, ${c.createdAt} AS createdAt, ${c.updatedAt} AS updatedAt`;
  }

  private where(range: KeyRange, params: unknown[]): string {
    return rangeClause(range, this.c.objectId, this.c.version, params, () => '?', ' COLLATE BINARY').replace('TRUE', '1');
  }

  async *scan(range: KeyRange, pageSize: number): AsyncIterable<ObjectMeta[]> {
    let from = range.from;
    let first = true;
    for (;;) {
      const params: unknown[] = [];
      let where = this.where({ from, to: range.to }, params);
      if (!first && from) where = where.replace('>=', '>');
      const rows = this.db
        .prepare(`SELECT ${this.metaColumns()} FROM ${this.t} WHERE ${where} ORDER BY ${this.c.objectId} COLLATE BINARY, ${this.c.version} LIMIT ?`)
        .all(...params, pageSize) as Row[];
      if (rows.length === 0) return;
      yield rows;
      if (rows.length < pageSize) return;
      const last = rows[rows.length - 1]!;
      from = { objectId: last.objectId, version: last.version };
      first = false;
    }
  }

  async summarize(range: KeyRange): Promise<SegmentSummary> {
    const c = this.c;
    const params: unknown[] = [];
    const row = this.db
      .prepare(
        `SELECT count(*) AS count, coalesce(sum(dr_fp1(${c.objectId}, ${c.version}, ${c.sha256}, ${c.size}, ${c.createdAt}, ${c.updatedAt})), 0) AS h1, coalesce(sum(dr_fp2(${c.objectId}, ${c.version}, ${c.sha256}, ${c.size}, ${c.createdAt}, ${c.updatedAt})), 0) AS h2 FROM ${this.t} WHERE ${this.where(range, params)}`,
      )
      .safeIntegers(true)
      .get(...params) as { count: bigint; h1: bigint; h2: bigint };
    // 64-bit sums: exact beyond 2^53, like Postgres' numeric sums
    return { count: Number(row.count), h1: row.h1.toString(), h2: row.h2.toString() };
  }

  async splitPoints(range: KeyRange, parts: number): Promise<ObjectKey[]> {
    const params: unknown[] = [];
    const where = this.where(range, params);
    const { n } = this.db.prepare(`SELECT count(*) AS n FROM ${this.t} WHERE ${where}`).get(...params) as { n: number };
    const stmt = this.db.prepare(
      `SELECT ${this.c.objectId} AS objectId, ${this.c.version} AS version FROM ${this.t} WHERE ${where} ORDER BY ${this.c.objectId} COLLATE BINARY, ${this.c.version} LIMIT 1 OFFSET ?`,
    );
    const keys: ObjectKey[] = [];
    for (let i = 1; i < parts; i++) {
      const offset = Math.floor((n * i) / parts);
      if (offset <= 0 || offset >= n) continue;
      const k = stmt.get(...params, offset) as ObjectKey | undefined;
      if (k && !keys.some((x) => x.objectId === k.objectId && x.version === k.version)) keys.push(k);
    }
    return keys;
  }

  async get(keys: ObjectKey[]): Promise<StoredObject[]> {
    const stmt = this.db.prepare(`SELECT ${this.metaColumns()}, ${this.c.content} AS content FROM ${this.t} WHERE ${this.c.objectId} = ? AND ${this.c.version} = ?`);
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
