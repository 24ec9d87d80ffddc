import type pg from 'pg';
import { BlobDir } from '../blob-dir.js';
import { DEFAULT_COLUMNS, quoteIdentifier, rangeClause, type ColumnMap } from '../sql.js';
import { type KeyRange, type ObjectKey, type ObjectMeta, StoreConfigError } from '../types.js';
import { query, transaction } from './connection.js';

export interface PostgresTableConfig {
  /** the caller's pool; the store never holds a client between calls, so it survives a server restart */
  pool: pg.Pool;
  table: string;
  /**
   * Column names (defaults: DEFAULT_COLUMNS). `sha256: null` (or explicitly undefined) means the table has no
   * digest column: the store computes encode(sha256(content), 'hex') inside Postgres.
   */
  columns?: Partial<Omit<ColumnMap, 'sha256'>> & { sha256?: string | null };
  /** create the table when missing (demo, tests); see init() */
  create?: boolean;
  /** shown by describe() instead of the table name */
  name?: string;
  /**
   * Content by reference: the content column is text holding `<sha[0:2]>/<sha>`, the path of a content-addressed
   * blob under `root` (a directory only this table's blobs live in), instead of bytea.
   */
  contentReference?: { root: string };
}

export type MetaRow = {
  objectId: string;
  version: number | string;
  size: number | string;
  sha256: string;
  createdAt: number | string;
  updatedAt: number | string;
};

/** "C" collation: Postgres then compares object ids bytewise (UTF-8), like compareKeys() and SQLite's BINARY. */
export const C = ' COLLATE "C"';

/**
 * First key of the advisory lock guarding a table's blobs (the second is the table's oid). Writers and readers
 * take it shared, collection exclusive: a blob is never unlinked between a put writing it and its row committing.
 */
const BLOB_LOCK = 0x64726231;

export const param = (i: number): string => `$${i}`;
/** epoch milliseconds of a timestamptz column, exact (extract returns numeric on Postgres >= 14) */
const epochMs = (col: string): string => `floor(extract(epoch from ${col})::numeric * 1000)::bigint`;

/** keys as the two array parameters (ids, versions) every multi-key statement unnests */
export const keyArrays = (keys: ObjectKey[]): [string[], number[]] => [
  keys.map((k) => k.objectId),
  keys.map((k) => k.version),
];

export const toMeta = (r: MetaRow): ObjectMeta => ({
  objectId: r.objectId,
  version: Number(r.version),
  size: Number(r.size),
  sha256: r.sha256,
  createdAt: Number(r.createdAt),
  updatedAt: Number(r.updatedAt),
});

/**
 * One configured table as SQL: its quoted names, the expressions for a row's digest and fingerprint, range
 * conditions and ordering, and statements through the pool with connection retries. What the schema, the reads
 * and the writes of PostgresTableStore share (the way a SQL dialect is shared by its driver and introspector).
 */
export class PostgresTable {
  readonly pool: pg.Pool;
  /** quoted table name */
  readonly t: string;
  /** quoted column names */
  readonly c: Record<keyof ColumnMap, string>;
  /** the table has no digest column: sha256 is computed from the content */
  readonly computedSha: boolean;
  /** SQL for the row's hex sha256 */
  readonly sha: string;
  /** COLLATE clause for id comparisons; empty once the schema found the column already collating as "C" */
  collate = C;
  readonly idColumnName: string;
  /** quoted fingerprint column, when configured */
  readonly fp: string | undefined;
  /** SQL for the row's fingerprint (the column, or computed from the row) */
  readonly fpSql: string;
  /** where the content lives when the table holds references to it */
  readonly blobs: BlobDir | undefined;

  constructor(readonly config: PostgresTableConfig) {
    const given = config.columns ?? {};
    this.computedSha = 'sha256' in given && given.sha256 == null;
    if (this.computedSha && config.contentReference) {
      throw new StoreConfigError(
        `postgres table ${config.table}: contentReference needs a sha256 column (columns.sha256 cannot be null): the digest cannot be computed from a reference`,
      );
    }
    this.blobs = config.contentReference && new BlobDir(config.contentReference.root);
    const columns = { ...DEFAULT_COLUMNS, ...given, sha256: given.sha256 ?? DEFAULT_COLUMNS.sha256 } as ColumnMap;
    this.t = quoteIdentifier(config.table, 'table name');
    this.c = Object.fromEntries(
      Object.entries(columns).map(([k, v]) => [k, quoteIdentifier(v as string, `column name for ${k}`)]),
    ) as Record<keyof ColumnMap, string>;
    this.idColumnName = columns.objectId;
    this.fp = columns.fingerprint ? this.c.fingerprint : undefined;
    this.sha = this.computedSha ? `encode(sha256(${this.c.content}), 'hex')` : this.c.sha256;
    this.fpSql = this.fp ?? this.computedFingerprint('');
    this.pool = config.pool;
    // An idle pooled client whose server went away emits 'error' on the pool; unhandled, that would kill the process.
    // The pool has already discarded the client and will connect a new one, so there is nothing else to do.
    if (this.pool.listenerCount('error') === 0) this.pool.on('error', () => {});
  }

  /**
   * rowFingerprint() in SQL over the columns of `row` ('' for the table's own columns, 'NEW.' in the trigger):
   * md5 of the fingerprint text built with concat_ws(chr(31), …) exactly as fingerprintText() builds it, hashed
   * as UTF-8, its first 16 hex digits read as a signed bigint.
   */
  computedFingerprint(row: string): string {
    const c = this.c;
    const sha = this.computedSha ? `encode(sha256(${row}${c.content}), 'hex')` : `${row}${c.sha256}`;
    const text = `concat_ws(chr(31), ${row}${c.objectId}::text, ${row}${c.version}::text, ${sha}, ${row}${c.size}::text, ${epochMs(row + c.createdAt)}::text, ${epochMs(row + c.updatedAt)}::text)`;
    return `('x' || substr(md5(convert_to(${text}, 'UTF8')), 1, 16))::bit(64)::bigint`;
  }

  /** a name derived from the table's (without its schema), cut to fit Postgres' 63 characters */
  derivedName(suffix: string): string {
    const table = this.config.table.split('.').pop()!;
    return quoteIdentifier(`${table.slice(0, 63 - suffix.length)}${suffix}`, 'derived name');
  }

  query<R extends pg.QueryResultRow>(text: string, params: unknown[]): Promise<pg.QueryResult<R>> {
    return query<R>(this.pool, text, params);
  }

  transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return transaction(this.pool, work);
  }

  /** the transaction-scoped advisory lock on this table's blobs (see BLOB_LOCK) */
  async lockBlobs(client: pg.PoolClient, mode: 'shared' | 'exclusive'): Promise<void> {
    const fn = mode === 'shared' ? 'pg_advisory_xact_lock_shared' : 'pg_advisory_xact_lock';
    await client.query(`SELECT ${fn}(${BLOB_LOCK}, $1::regclass::oid::int)`, [this.t]);
  }

  metaColumns(): string {
    const c = this.c;
    return `${c.objectId} AS "objectId", ${c.version} AS "version", ${c.size} AS "size", ${this.sha} AS "sha256", ${epochMs(c.createdAt)} AS "createdAt", ${epochMs(c.updatedAt)} AS "updatedAt"`;
  }

  where(range: KeyRange, params: unknown[], afterFrom = false): string {
    return rangeClause(range, this.c.objectId, this.c.version, params, param, {
      collate: this.collate,
      afterFrom,
      idBounds: true,
    });
  }

  orderBy(): string {
    return `ORDER BY ${this.c.objectId}${this.collate}, ${this.c.version}`;
  }
}
