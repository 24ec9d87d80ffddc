import type pg from 'pg';
import { assertContent } from './fingerprint.js';
import { DEFAULT_COLUMNS, keysetPages, quoteIdentifier, rangeClause, type ColumnMap } from './sql.js';
import type { KeyRange, ObjectKey, ObjectMeta, ObjectStoreAdapter, SegmentSummary, StoredObject } from './types.js';

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
}

type MetaRow = { objectId: string; version: number | string; size: number | string; sha256: string; createdAt: number | string; updatedAt: number | string };
type ContentRow = MetaRow & { content: Buffer };

/** "C" collation: Postgres then compares object ids bytewise (UTF-8), like compareKeys() and SQLite's BINARY. */
const C = ' COLLATE "C"';
/** content bytes per INSERT statement (a put of a larger batch is several statements in one transaction) */
const MAX_STATEMENT_BYTES = 16 * 1024 * 1024;
const RETRIES = 3;

const param = (i: number): string => `$${i}`;
/** epoch milliseconds of a timestamptz column, exact (extract returns numeric on Postgres >= 14) */
const epochMs = (col: string): string => `floor(extract(epoch from ${col})::numeric * 1000)::bigint`;

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', '57P01', '57P02', '57P03']);

/** The connection went away (server restart, idle socket killed): the statement can be retried on a fresh connection. */
export function isConnectionError(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  if (typeof e.code === 'string' && (CONNECTION_CODES.has(e.code) || e.code.startsWith('08'))) return true;
  return typeof e.message === 'string' && /connection terminated|connection error|not queryable|server closed the connection|terminating connection/i.test(e.message);
}

const toMeta = (r: MetaRow): ObjectMeta => ({
  objectId: r.objectId,
  version: Number(r.version),
  size: Number(r.size),
  sha256: r.sha256,
  createdAt: Number(r.createdAt),
  updatedAt: Number(r.updatedAt),
});

/**
 * Objects in one Postgres table. Keys are ordered with COLLATE "C" (bytewise); timestamps are timestamptz,
 * exchanged as epoch milliseconds; fingerprints are computed inside Postgres and equal rowFingerprint().
 * Every statement is parameterised and goes through the pool (no client is kept), and statements that fail
 * because the connection died are retried: every operation here is idempotent.
 */
export class PostgresTableStore implements ObjectStoreAdapter {
  private readonly pool: pg.Pool;
  private readonly t: string;
  private readonly c: Record<keyof ColumnMap, string>;
  /** the table has no digest column: sha256 is computed from the content */
  private readonly computedSha: boolean;
  /** SQL for the row's hex sha256 */
  private readonly sha: string;
  private initialized: Promise<void> | undefined;
  /** COLLATE clause for id comparisons; empty once init() found the column already collating as "C" */
  private collate = C;
  private readonly idColumnName: string;

  constructor(private readonly config: PostgresTableConfig) {
    const given = config.columns ?? {};
    this.computedSha = 'sha256' in given && given.sha256 == null;
    const columns = { ...DEFAULT_COLUMNS, ...given, sha256: given.sha256 ?? DEFAULT_COLUMNS.sha256 } as Required<ColumnMap>;
    this.t = quoteIdentifier(config.table, 'table name');
    this.c = Object.fromEntries(Object.entries(columns).map(([k, v]) => [k, quoteIdentifier(v, `column name for ${k}`)])) as Record<keyof ColumnMap, string>;
    this.idColumnName = columns.objectId;
    this.sha = this.computedSha ? `encode(sha256(${this.c.content}), 'hex')` : this.c.sha256;
    this.pool = config.pool;
    // An idle pooled client whose server went away emits 'error' on the pool; unhandled, that would kill the process.
    // The pool has already discarded the client and will connect a new one, so there is nothing else to do.
    if (this.pool.listenerCount('error') === 0) this.pool.on('error', () => {});
  }

  /** A store whose table exists (created when `create`). */
  static async open(config: PostgresTableConfig): Promise<PostgresTableStore> {
    const store = new PostgresTableStore(config);
    await store.init();
    return store;
  }

  /** Creates the table when `create` is set and reads the id column's collation; idempotent. Every other method calls it first. */
  init(): Promise<void> {
    this.initialized ??= this.prepare().catch((error: unknown) => {
      this.initialized = undefined;
      throw error;
    });
    return this.initialized;
  }

  private async prepare(): Promise<void> {
    if (this.config.create) await this.createTable();
    // a column that already collates as "C" needs no COLLATE clause, and without one the primary key serves
    // range queries (with one, Postgres falls back to sequential scans)
    const { rows } = await this.query<{ coll: string | null }>(
      `SELECT a.attcollation::regcollation::text AS coll FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attname = $2`,
      [this.t, this.idColumnName],
    );
    const coll = rows[0]?.coll?.replaceAll('"', '');
    this.collate = coll === 'C' || coll === 'POSIX' ? '' : C;
  }

  private async createTable(): Promise<void> {
    const c = this.c;
    const sha = this.computedSha ? '' : `${c.sha256} text NOT NULL, `;
    await this.query(
      `CREATE TABLE IF NOT EXISTS ${this.t} (${c.objectId} text COLLATE "C" NOT NULL, ${c.version} integer NOT NULL, ${c.content} bytea NOT NULL, ${c.size} bigint NOT NULL, ${sha}${c.createdAt} timestamptz NOT NULL, ${c.updatedAt} timestamptz NOT NULL, PRIMARY KEY (${c.objectId}, ${c.version}))`,
      [],
    );
  }

  describe(): string {
    return `postgres table ${this.config.name ?? this.config.table}`;
  }

  private async query<R extends pg.QueryResultRow>(text: string, params: unknown[]): Promise<pg.QueryResult<R>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.pool.query<R>(text, params);
      } catch (error) {
        if (attempt >= RETRIES || !isConnectionError(error)) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
  }

  /** Runs `work` in one transaction on a pooled client, retried as a whole when the connection dies. */
  private async transaction(work: (client: pg.PoolClient) => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient | undefined;
      try {
        client = await this.pool.connect();
        await client.query('BEGIN');
        await work(client);
        await client.query('COMMIT');
        client.release();
        return;
      } catch (error) {
        if (client) {
          const broken = isConnectionError(error);
          if (!broken) await client.query('ROLLBACK').catch(() => {});
          // a broken client is destroyed rather than returned to the pool
          client.release(broken ? (error as Error) : undefined);
        }
        if (attempt >= RETRIES || !isConnectionError(error)) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
  }

  private metaColumns(): string {
    const c = this.c;
    return `${c.objectId} AS "objectId", ${c.version} AS "version", ${c.size} AS "size", ${this.sha} AS "sha256", ${epochMs(c.createdAt)} AS "createdAt", ${epochMs(c.updatedAt)} AS "updatedAt"`;
  }

  private where(range: KeyRange, params: unknown[], afterFrom = false): string {
    return rangeClause(range, this.c.objectId, this.c.version, params, param, this.collate, afterFrom);
  }

  private orderBy(): string {
    return `ORDER BY ${this.c.objectId}${this.collate}, ${this.c.version}`;
  }

  async *scan(range: KeyRange, pageSize: number): AsyncIterable<ObjectMeta[]> {
    await this.init();
    yield* keysetPages(range, pageSize, async (r, after) => {
      const params: unknown[] = [];
      const where = this.where(r, params, after);
      params.push(pageSize);
      const { rows } = await this.query<MetaRow>(`SELECT ${this.metaColumns()} FROM ${this.t} WHERE ${where} ${this.orderBy()} LIMIT ${param(params.length)}`, params);
      return rows.map(toMeta);
    });
  }

  /**
   * count and the sums of the two halves of md5(fingerprintText(row)), all computed by Postgres: the text is
   * built with concat_ws(chr(31), …) exactly as fingerprintText() builds it, hashed as UTF-8, and each 8-hex-digit
   * half becomes an unsigned 32-bit integer through bit(32) → bigint; sum(bigint) is numeric, so no overflow.
   */
  async summarize(range: KeyRange): Promise<SegmentSummary> {
    await this.init();
    const c = this.c;
    const params: unknown[] = [];
    const text = `concat_ws(chr(31), ${c.objectId}::text, ${c.version}::text, ${this.sha}, ${c.size}::text, ${epochMs(c.createdAt)}::text, ${epochMs(c.updatedAt)}::text)`;
    const { rows } = await this.query<{ count: string; h1: string; h2: string }>(
      `SELECT count(*) AS count, coalesce(sum(('x' || substr(fp, 1, 8))::bit(32)::bigint), 0)::text AS h1, coalesce(sum(('x' || substr(fp, 9, 8))::bit(32)::bigint), 0)::text AS h2
       FROM (SELECT md5(convert_to(${text}, 'UTF8')) AS fp FROM ${this.t} WHERE ${this.where(range, params)}) AS rows`,
      params,
    );
    const row = rows[0]!;
    return { count: Number(row.count), h1: row.h1, h2: row.h2 };
  }

  /**
   * The keys at 0-based positions floor(n * i / parts), 0 < i < parts, of the n rows in the range (the same
   * points as the SQLite stores choose), found in one ordered pass: position k is such a point when some integer
   * i lies in [k * parts / n, (k + 1) * parts / n), i.e. when ceil(k * parts / n) * n < (k + 1) * parts.
   */
  async splitPoints(range: KeyRange, parts: number): Promise<ObjectKey[]> {
    if (!(parts >= 2)) return [];
    await this.init();
    const c = this.c;
    const params: unknown[] = [];
    const where = this.where(range, params);
    params.push(Math.floor(parts));
    const p = `${param(params.length)}::bigint`;
    const { rows } = await this.query<{ objectId: string; version: number | string }>(
      `SELECT "objectId", "version" FROM (
         SELECT ${c.objectId} AS "objectId", ${c.version} AS "version", row_number() OVER w - 1 AS k, count(*) OVER () AS n
         FROM ${this.t} WHERE ${where} WINDOW w AS (${this.orderBy()})
       ) AS numbered
       WHERE k > 0 AND ((k * ${p} + n - 1) / n) * n < (k + 1) * ${p}
       ORDER BY k`,
      params,
    );
    return rows.map((r) => ({ objectId: r.objectId, version: Number(r.version) }));
  }

  async get(keys: ObjectKey[]): Promise<StoredObject[]> {
    if (keys.length === 0) return [];
    await this.init();
    const c = this.c;
    const { rows } = await this.query<ContentRow>(
      // the lateral subquery resolves the table's columns first, whatever they are called
      `SELECT o.* FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS k(id, v, ord)
       CROSS JOIN LATERAL (SELECT ${this.metaColumns()}, ${c.content} AS "content" FROM ${this.t} WHERE ${c.objectId} = k.id AND ${c.version} = k.v) AS o
       ORDER BY k.ord`,
      [keys.map((k) => k.objectId), keys.map((k) => k.version)],
    );
    return rows.map((r) => ({ ...toMeta(r), content: r.content }));
  }

  async put(objects: StoredObject[]): Promise<void> {
    objects.forEach(assertContent);
    if (objects.length === 0) return;
    await this.init();
    // one row per key (the last one wins, as sequential upserts would): ON CONFLICT cannot touch a row twice
    const byKey = new Map<string, StoredObject>();
    for (const o of objects) byKey.set(JSON.stringify([o.objectId, o.version]), o);
    const chunks: StoredObject[][] = [[]];
    let bytes = 0;
    for (const o of byKey.values()) {
      if (bytes > 0 && bytes + o.content.length > MAX_STATEMENT_BYTES) {
        chunks.push([]);
        bytes = 0;
      }
      chunks[chunks.length - 1]!.push(o);
      bytes += o.content.length;
    }
    const c = this.c;
    const shaColumn = this.computedSha ? '' : `, ${c.sha256}`;
    const shaValue = this.computedSha ? '' : ', x.sha';
    const shaUpdate = this.computedSha ? '' : `, ${c.sha256} = excluded.${c.sha256}`;
    const sql = `INSERT INTO ${this.t} (${c.objectId}, ${c.version}, ${c.content}, ${c.size}${shaColumn}, ${c.createdAt}, ${c.updatedAt})
      SELECT x.id, x.v, x.content, x.size${shaValue}, to_timestamp(x.created / 1000.0), to_timestamp(x.updated / 1000.0)
      FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::bigint[], $5::text[], $6::bigint[], $7::bigint[]) AS x(id, v, content, size, sha, created, updated)
      ON CONFLICT (${c.objectId}, ${c.version}) DO UPDATE SET ${c.content} = excluded.${c.content}, ${c.size} = excluded.${c.size}${shaUpdate}, ${c.createdAt} = excluded.${c.createdAt}, ${c.updatedAt} = excluded.${c.updatedAt}`;
    await this.transaction(async (client) => {
      for (const chunk of chunks) {
        await client.query(sql, [
          chunk.map((o) => o.objectId),
          chunk.map((o) => o.version),
          chunk.map((o) => o.content),
          chunk.map((o) => o.size),
          chunk.map((o) => o.sha256),
          chunk.map((o) => o.createdAt),
          chunk.map((o) => o.updatedAt),
        ]);
      }
    });
  }

  async delete(keys: ObjectKey[]): Promise<void> {
    if (keys.length === 0) return;
    await this.init();
    const c = this.c;
    await this.query(
      `DELETE FROM ${this.t} WHERE (${c.objectId}, ${c.version}) IN (SELECT k.id, k.v FROM unnest($1::text[], $2::bigint[]) AS k(id, v))`,
      [keys.map((k) => k.objectId), keys.map((k) => k.version)],
    );
  }

  /** The pool belongs to the caller, who ends it. */
  async close(): Promise<void> {}
}
