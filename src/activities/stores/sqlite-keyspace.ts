import type Database from 'better-sqlite3';
import { rowFingerprint } from './fingerprint.js';
import { keysetPages, rangeClause } from './sql.js';
import type { KeyRange, ObjectKey, ObjectMeta, SegmentSummary } from './types.js';

/** Quoted column names of a SQLite table holding object metadata. */
export interface SqliteColumns {
  table: string;
  objectId: string;
  version: string;
  sha256: string;
  size: string;
  createdAt: string;
  updatedAt: string;
}

/**
 * Key order is the id column's own collation, which must be BINARY (SQLite's default, bytewise like Postgres'
 * "C"): a COLLATE clause inside the row-value comparison would stop SQLite from using the primary key.
 */

/**
 * Range reads over object metadata in SQLite, shared by the SQLite table store and the object store's index:
 * keyset scans in bytewise key order, in-database segment checksums, and split points.
 */
export class SqliteKeyspace {
  private readonly metaColumns: string;
  private readonly fpArgs: string;

  constructor(
    private readonly db: Database.Database,
    private readonly c: SqliteColumns,
  ) {
    this.metaColumns = `${c.objectId} AS objectId, ${c.version} AS version, ${c.size} AS size, ${c.sha256} AS sha256, ${c.createdAt} AS createdAt, ${c.updatedAt} AS updatedAt`;
    this.fpArgs = [c.objectId, c.version, c.sha256, c.size, c.createdAt, c.updatedAt].join(', ');
    const fp = (i: 0 | 1) => (id: string, version: number, sha: string, size: number, created: number, updated: number) =>
      rowFingerprint({ objectId: id, version: Number(version), sha256: sha, size: Number(size), createdAt: Number(created), updatedAt: Number(updated) })[i];
    db.function('dr_fp1', { deterministic: true }, fp(0) as never);
    db.function('dr_fp2', { deterministic: true }, fp(1) as never);
  }

  get selectMeta(): string {
    return this.metaColumns;
  }

  where(range: KeyRange, params: unknown[], afterFrom = false): string {
    return rangeClause(range, this.c.objectId, this.c.version, params, () => '?', '', afterFrom).replace('TRUE', '1');
  }

  get orderBy(): string {
    return `ORDER BY ${this.c.objectId}, ${this.c.version}`;
  }

  scan(range: KeyRange, pageSize: number): AsyncGenerator<ObjectMeta[]> {
    return keysetPages(range, pageSize, (r, after) => {
      const params: unknown[] = [];
      const where = this.where(r, params, after);
      return this.db.prepare(`SELECT ${this.metaColumns} FROM ${this.c.table} WHERE ${where} ${this.orderBy} LIMIT ?`).all(...params, pageSize) as ObjectMeta[];
    });
  }

  /** SQLite sums exactly in 64 bits; the sums are read as bigint so they stay exact past 2^53 (~2M rows). */
  summarize(range: KeyRange): SegmentSummary {
    const params: unknown[] = [];
    const row = this.db
      .prepare(`SELECT count(*) AS count, coalesce(sum(dr_fp1(${this.fpArgs})), 0) AS h1, coalesce(sum(dr_fp2(${this.fpArgs})), 0) AS h2 FROM ${this.c.table} WHERE ${this.where(range, params)}`)
      .safeIntegers(true)
      .get(...params) as { count: bigint; h1: bigint; h2: bigint };
    return { count: Number(row.count), h1: row.h1.toString(), h2: row.h2.toString() };
  }

  /** Keys at floor(n·i/parts), the same positions every store picks. */
  splitPoints(range: KeyRange, parts: number): ObjectKey[] {
    const params: unknown[] = [];
    const where = this.where(range, params);
    const { n } = this.db.prepare(`SELECT count(*) AS n FROM ${this.c.table} WHERE ${where}`).get(...params) as { n: number };
    const stmt = this.db.prepare(`SELECT ${this.c.objectId} AS objectId, ${this.c.version} AS version FROM ${this.c.table} WHERE ${where} ${this.orderBy} LIMIT 1 OFFSET ?`);
    const keys: ObjectKey[] = [];
    for (let i = 1; i < parts; i++) {
      const offset = Math.floor((n * i) / parts);
      if (offset <= 0 || offset >= n) continue;
      const k = stmt.get(...params, offset) as ObjectKey | undefined;
      if (k && !keys.some((x) => x.objectId === k.objectId && x.version === k.version)) keys.push(k);
    }
    return keys;
  }
}
