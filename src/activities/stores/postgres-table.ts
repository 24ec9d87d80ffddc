import { mkdir, stat } from 'node:fs/promises';
import type pg from 'pg';
import { BlobDir } from './blob-dir.js';
import { assertContent } from './fingerprint.js';
import { DEFAULT_COLUMNS, keyCondition, keysetPages, quoteIdentifier, rangeClause, type ColumnMap } from './sql.js';
import {
  type FingerprintList,
  type FingerprintProbe,
  type KeyRange,
  type ObjectKey,
  type ObjectMeta,
  type ObjectStoreAdapter,
  type SegmentSummary,
  StoreConfigError,
  type StoredObject,
} from './types.js';

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

type MetaRow = {
  objectId: string;
  version: number | string;
  size: number | string;
  sha256: string;
  createdAt: number | string;
  updatedAt: number | string;
};
type ContentRow = MetaRow & { content: Buffer };
type ReferenceRow = MetaRow & { content: string };

/** "C" collation: Postgres then compares object ids bytewise (UTF-8), like compareKeys() and SQLite's BINARY. */
const C = ' COLLATE "C"';
/** content bytes per INSERT statement (a put of a larger batch is several statements in one transaction) */
const MAX_STATEMENT_BYTES = 16 * 1024 * 1024;
const RETRIES = 3;
/**
 * First key of the advisory lock guarding a table's blobs (the second is the table's oid). Writers and readers
 * take it shared, collection exclusive: a blob is never unlinked between a put writing it and its row committing.
 */
const BLOB_LOCK = 0x64726231;

const param = (i: number): string => `$${i}`;
/** epoch milliseconds of a timestamptz column, exact (extract returns numeric on Postgres >= 14) */
const epochMs = (col: string): string => `floor(extract(epoch from ${col})::numeric * 1000)::bigint`;

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', '57P01', '57P02', '57P03']);

/** The connection went away (server restart, idle socket killed): the statement can be retried on a fresh connection. */
export function isConnectionError(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  if (typeof e.code === 'string' && (CONNECTION_CODES.has(e.code) || e.code.startsWith('08'))) return true;
  return (
    typeof e.message === 'string' &&
    /connection terminated|connection error|not queryable|server closed the connection|terminating connection/i.test(
      e.message,
    )
  );
}

/** keys as the two array parameters (ids, versions) every multi-key statement unnests */
const keyArrays = (keys: ObjectKey[]): [string[], number[]] => [
  keys.map((k) => k.objectId),
  keys.map((k) => k.version),
];

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
 * exchanged as epoch milliseconds; fingerprints equal rowFingerprint() and come from Postgres: from the
 * `fingerprint` column a trigger keeps (installFingerprint()) when one is configured, else computed per row.
 * Every statement is parameterised and goes through the pool (no client is kept), and statements that fail
 * because the connection died are retried: every operation here is idempotent.
 *
 * With `contentReference` the content column holds `<sha[0:2]>/<sha>` references into a BlobDir (see
 * putReferenced(), collect()). Blob writes and reads take an advisory lock on the table shared, collection
 * exclusive, so instances and workers on the same table never collect a blob under each other; writers that
 * do not take that lock must not delete blobs, and the root must hold this table's blobs only.
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
  /** quoted fingerprint column, when configured */
  private readonly fp: string | undefined;
  /** SQL for the row's fingerprint (the column, or computed from the row) */
  private readonly fpSql: string;
  /** where the content lives when the table holds references to it */
  private readonly blobs: BlobDir | undefined;

  constructor(private readonly config: PostgresTableConfig) {
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
    if (this.blobs) await this.prepareBlobs();
    if (this.config.create) await this.createTable();
    await this.readCollation();
    if (this.blobs) await this.checkReferenceColumn();
    if (this.fp) {
      if (this.config.create) await this.addFingerprint();
      else await this.checkFingerprint();
    }
  }

  /** a column that already collates as "C" needs no COLLATE clause, and without one the primary key serves range queries */
  private async readCollation(): Promise<void> {
    // (with one, Postgres falls back to sequential scans)
    const { rows } = await this.query<{ coll: string | null }>(
      `SELECT a.attcollation::regcollation::text AS coll FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attname = $2`,
      [this.t, this.idColumnName],
    );
    const coll = rows[0]?.coll?.replaceAll('"', '');
    this.collate = coll === 'C' || coll === 'POSIX' ? '' : C;
  }

  /**
   * rowFingerprint() in SQL over the columns of `row` ('' for the table's own columns, 'NEW.' in the trigger):
   * md5 of the fingerprint text built with concat_ws(chr(31), …) exactly as fingerprintText() builds it, hashed
   * as UTF-8, its first 16 hex digits read as a signed bigint.
   */
  private computedFingerprint(row: string): string {
    const c = this.c;
    const sha = this.computedSha ? `encode(sha256(${row}${c.content}), 'hex')` : `${row}${c.sha256}`;
    const text = `concat_ws(chr(31), ${row}${c.objectId}::text, ${row}${c.version}::text, ${sha}, ${row}${c.size}::text, ${epochMs(row + c.createdAt)}::text, ${epochMs(row + c.updatedAt)}::text)`;
    return `('x' || substr(md5(convert_to(${text}, 'UTF8')), 1, 16))::bit(64)::bigint`;
  }

  /** a name derived from the table's (without its schema), cut to fit Postgres' 63 characters */
  private derivedName(suffix: string): string {
    const table = this.config.table.split('.').pop()!;
    return quoteIdentifier(`${table.slice(0, 63 - suffix.length)}${suffix}`, 'derived name');
  }

  /** names derived from the table: the trigger, its function (in the table's schema) and the covering index */
  private fingerprintNames(): { trigger: string; fn: string; index: string } {
    const parts = this.config.table.split('.');
    const schema = parts.length > 1 ? `${quoteIdentifier(parts[0]!, 'schema name')}.` : '';
    return {
      trigger: this.derivedName('_dr_fp'),
      fn: `${schema}${this.derivedName('_dr_fp_fn')}`,
      index: this.derivedName('_dr_fp_idx'),
    };
  }

  fingerprintSource(): 'stored' | 'computed' {
    return this.fp ? 'stored' : 'computed';
  }

  /**
   * Adds the fingerprint column, the trigger that sets it on every insert and update (whoever writes), fills it
   * for existing rows, makes it NOT NULL and adds a covering index (key, fingerprint) so segment checksums are
   * index-only scans; idempotent, in one transaction. On a large table the fill rewrites every row once: run it
   * (`npx runbook dual-write prepare`) in a quiet hour, not during an incident.
   */
  async installFingerprint(): Promise<void> {
    if (!this.fp)
      throw new Error(`postgres table ${this.config.table}: no fingerprint column is configured (columns.fingerprint)`);
    if (this.config.create) await this.createTable();
    await this.readCollation();
    await this.addFingerprint();
    this.initialized = Promise.resolve();
  }

  private async addFingerprint(): Promise<void> {
    const fp = this.fp;
    if (!fp)
      throw new Error(`postgres table ${this.config.table}: no fingerprint column is configured (columns.fingerprint)`);
    const { trigger, fn, index } = this.fingerprintNames();
    await this.transaction(async (client) => {
      // two installers at once (two workers preparing the same pair) must not interleave their DDL
      await client.query(`LOCK TABLE ${this.t} IN SHARE ROW EXCLUSIVE MODE`);
      await client.query(`ALTER TABLE ${this.t} ADD COLUMN IF NOT EXISTS ${fp} bigint`);
      await client.query(
        `CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN NEW.${fp} := ${this.computedFingerprint('NEW.')}; RETURN NEW; END $fn$`,
      );
      await client.query(`DROP TRIGGER IF EXISTS ${trigger} ON ${this.t}`);
      await client.query(
        `CREATE TRIGGER ${trigger} BEFORE INSERT OR UPDATE ON ${this.t} FOR EACH ROW EXECUTE FUNCTION ${fn}()`,
      );
      await client.query(
        `UPDATE ${this.t} SET ${fp} = ${this.computedFingerprint('')} WHERE ${fp} IS DISTINCT FROM ${this.computedFingerprint('')}`,
      );
      await client.query(`ALTER TABLE ${this.t} ALTER COLUMN ${fp} SET NOT NULL`);
      await client.query(
        `CREATE INDEX IF NOT EXISTS ${index} ON ${this.t} (${this.c.objectId}${this.collate}, ${this.c.version}) INCLUDE (${fp})`,
      );
    });
  }

  /** Refuses to trust a fingerprint column nothing keeps correct. */
  private async checkFingerprint(): Promise<void> {
    const { trigger } = this.fingerprintNames();
    const { rows } = await this.query<{ notnull: boolean | null; trigger: boolean }>(
      `SELECT (SELECT a.attnotnull FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attname = $2 AND NOT a.attisdropped) AS notnull,
              EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = $1::regclass AND g.tgname = $3 AND g.tgenabled <> 'D') AS trigger`,
      [this.t, this.fp!.slice(1, -1), trigger.slice(1, -1)],
    );
    const row = rows[0]!;
    if (!row.notnull || !row.trigger) {
      const what =
        row.notnull === null
          ? `column ${this.fp} does not exist`
          : !row.notnull
            ? `column ${this.fp} allows NULL`
            : `trigger ${trigger} is missing or disabled`;
      throw new StoreConfigError(
        `postgres table ${this.config.table}: fingerprint ${what}; install it with \`npx runbook dual-write prepare --env <env> --target <target>\``,
      );
    }
  }

  private async createTable(): Promise<void> {
    const c = this.c;
    const sha = this.computedSha ? '' : `${c.sha256} text NOT NULL, `;
    // the fingerprint column itself is added by installFingerprint()
    await this.query(
      `CREATE TABLE IF NOT EXISTS ${this.t} (${c.objectId} text COLLATE "C" NOT NULL, ${c.version} integer NOT NULL, ${c.content} ${this.blobs ? 'text' : 'bytea'} NOT NULL, ${c.size} bigint NOT NULL, ${sha}${c.createdAt} timestamptz NOT NULL, ${c.updatedAt} timestamptz NOT NULL, PRIMARY KEY (${c.objectId}, ${c.version}))`,
      [],
    );
    // collection asks, per released blob, whether any row still references it
    if (this.blobs)
      await this.query(
        `CREATE INDEX IF NOT EXISTS ${this.derivedName('_dr_content_idx')} ON ${this.t} (${c.content})`,
        [],
      );
  }

  /** The blob directory is created with the table; otherwise it must exist: a wrong path must not start an empty one. */
  private async prepareBlobs(): Promise<void> {
    const root = this.blobs!.dir;
    if (this.config.create) await mkdir(root, { recursive: true });
    const isDir = await stat(root).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (!isDir)
      throw new StoreConfigError(
        `postgres table ${this.config.table}: contentReference.root ${root} is not an existing directory`,
      );
  }

  /** A bytea content column holds content, not references: refuse it rather than fail on every put. */
  private async checkReferenceColumn(): Promise<void> {
    const { rows } = await this.query<{ type: string | null }>(
      `SELECT (SELECT format_type(a.atttypid, NULL) FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attname = $2 AND NOT a.attisdropped) AS type`,
      [this.t, this.c.content.slice(1, -1)],
    );
    const type = rows[0]?.type;
    if (type !== 'text' && type !== 'character varying') {
      throw new StoreConfigError(
        `postgres table ${this.config.table}: contentReference needs a text content column, ${this.c.content} is ${type ?? 'missing'}`,
      );
    }
  }

  describe(): string {
    const where = this.blobs ? ` (content under ${this.blobs.dir})` : '';
    return `postgres table ${this.config.name ?? this.config.table}${where}`;
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
  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient | undefined;
      try {
        client = await this.pool.connect();
        await client.query('BEGIN');
        const result = await work(client);
        await client.query('COMMIT');
        client.release();
        return result;
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
    return rangeClause(range, this.c.objectId, this.c.version, params, param, {
      collate: this.collate,
      afterFrom,
      idBounds: true,
    });
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
      const { rows } = await this.query<MetaRow>(
        `SELECT ${this.metaColumns()} FROM ${this.t} WHERE ${where} ${this.orderBy()} LIMIT ${param(params.length)}`,
        params,
      );
      return rows.map(toMeta);
    });
  }

  /** count, Σ high and Σ low signed 32-bit halves of the fingerprints (sum(int) is bigint: exact) */
  private static readonly SUMS = (fp: string) =>
    `count(*)::bigint::text AS count, coalesce(sum((${fp} >> 32)::int), 0)::text AS h1, coalesce(sum(((${fp} << 32) >> 32)::int), 0)::text AS h2`;

  async summarize(range: KeyRange): Promise<SegmentSummary> {
    await this.init();
    const params: unknown[] = [];
    const { rows } = await this.query<{ count: string; h1: string; h2: string }>(
      `SELECT ${PostgresTableStore.SUMS(this.fpSql)} FROM ${this.t} WHERE ${this.where(range, params)}`,
      params,
    );
    const row = rows[0]!;
    return { count: Number(row.count), h1: row.h1, h2: row.h2 };
  }

  /**
   * Runs `inner` (a subquery over the table with `where` for the range condition) once per range, in one
   * statement: ranges bounded on both sides go through unnest() + LATERAL (one index range scan each), open-ended
   * ones as their own statements. With `values` (one text per range), `inner`'s second argument is the SQL for
   * the range's value. Rows come back tagged with the range's index.
   */
  private async perRange<R extends pg.QueryResultRow>(
    ranges: KeyRange[],
    inner: (where: string, value: string) => string,
    values?: string[],
  ): Promise<Array<{ i: number; rows: R[] }>> {
    await this.init();
    const bounded: number[] = [];
    const open: number[] = [];
    ranges.forEach((r, i) => (r.from && r.to ? bounded : open).push(i));
    const out: Array<{ i: number; rows: R[] }> = [];
    const work: Array<Promise<void>> = [];
    if (bounded.length) {
      const bounds = { from: { id: 's.lo_id', version: 's.lo_v' }, to: { id: 's.hi_id', version: 's.hi_v' } };
      const where = keyCondition(this.c.objectId, this.c.version, bounds, { collate: this.collate, idBounds: true });
      const rs = bounded.map((i) => ranges[i]!);
      const params: unknown[] = [
        rs.map((r) => r.from!.objectId),
        rs.map((r) => r.from!.version),
        rs.map((r) => r.to!.objectId),
        rs.map((r) => r.to!.version),
      ];
      if (values) params.push(bounded.map((i) => values[i]!));
      const columns = values
        ? '$1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[]) WITH ORDINALITY AS s(lo_id, lo_v, hi_id, hi_v, x, i)'
        : '$1::text[], $2::bigint[], $3::text[], $4::bigint[]) WITH ORDINALITY AS s(lo_id, lo_v, hi_id, hi_v, i)';
      work.push(
        this.query<R & { i: string }>(
          `SELECT s.i::int AS i, o.* FROM unnest(${columns} CROSS JOIN LATERAL (${inner(where, 's.x')}) AS o`,
          params,
        ).then(({ rows }) => {
          const groups = new Map<number, R[]>();
          for (const row of rows) {
            const i = bounded[Number(row.i) - 1]!;
            let g = groups.get(i);
            if (!g) groups.set(i, (g = []));
            g.push(row);
          }
          for (const [i, g] of groups) out.push({ i, rows: g });
        }),
      );
    }
    for (const i of open) {
      const params: unknown[] = [];
      const where = this.where(ranges[i]!, params);
      if (values) params.push(values[i]);
      work.push(
        this.query<R>(inner(where, `${param(params.length)}::text`), params).then(
          ({ rows }) => void out.push({ i, rows }),
        ),
      );
    }
    await Promise.all(work);
    return out.sort((x, y) => x.i - y.i);
  }

  async summarizeRanges(ranges: KeyRange[]): Promise<SegmentSummary[]> {
    const groups = await this.perRange<{ count: string; h1: string; h2: string }>(
      ranges,
      (where) => `SELECT ${PostgresTableStore.SUMS(this.fpSql)} FROM ${this.t} WHERE ${where}`,
    );
    const out: SegmentSummary[] = ranges.map(() => ({ count: 0, h1: '0', h2: '0' }));
    for (const { i, rows } of groups) out[i] = { count: Number(rows[0]!.count), h1: rows[0]!.h1, h2: rows[0]!.h2 };
    return out;
  }

  /** one string_agg per range: a segment's fingerprints cross the wire and the driver as one text value */
  async fingerprintLists(ranges: KeyRange[]): Promise<FingerprintList[]> {
    const groups = await this.perRange<{ list: string | null }>(
      ranges,
      // the subquery's order (the index's) is the aggregate's: no sort per range
      (where) =>
        `SELECT string_agg(fp::text, ',') AS list FROM (SELECT ${this.fpSql} AS fp FROM ${this.t} WHERE ${where} ${this.orderBy()}) AS ordered`,
    );
    const out: FingerprintList[] = ranges.map(() => '');
    for (const { i, rows } of groups) out[i] = rows[0]?.list ?? '';
    return out;
  }

  /** one statement: one range scan per probe, on the covering index when the column is stored */
  async metaByFingerprint(probes: FingerprintProbe[]): Promise<ObjectMeta[]> {
    const c = this.c;
    const asked = probes.filter((p) => p.fingerprints.length);
    if (!asked.length) return [];
    const groups = await this.perRange<MetaRow>(
      asked.map((p) => p.range),
      // the keys from the covering index (an index-only scan of the range), then the rows by key; OFFSET 0 keeps
      // the planner from flattening the probes into one hash join over the whole table
      (where, fps) =>
        `SELECT ${this.metaColumns()} FROM ${this.t} WHERE (${c.objectId}, ${c.version}) IN (SELECT ${c.objectId}, ${c.version} FROM ${this.t} WHERE ${where} AND ${this.fpSql} = ANY(string_to_array(${fps}, ',')::bigint[]) OFFSET 0)`,
      asked.map((p) => p.fingerprints.join(',')),
    );
    return groups.flatMap(({ rows }) => rows.map(toMeta));
  }

  /** Keys at positions step, 2·step, … (0-based) from the start of the range, numbered in one ordered index scan. */
  async stepKeys(range: KeyRange, step: number, max: number): Promise<ObjectKey[]> {
    if (!(step >= 1)) throw new Error(`segment step must be at least 1, got ${step}`);
    if (max < 1) return [];
    await this.init();
    const c = this.c;
    const params: unknown[] = [];
    const where = this.where(range, params);
    params.push(step * max + 1, step);
    const { rows } = await this.query<{ objectId: string; version: number | string }>(
      `SELECT "objectId", "version" FROM (
         SELECT ${c.objectId} AS "objectId", ${c.version} AS "version", row_number() OVER (${this.orderBy()}) AS rn
         FROM ${this.t} WHERE ${where} ${this.orderBy()} LIMIT ${param(params.length - 1)}
       ) AS numbered
       WHERE rn > 1 AND (rn - 1) % ${param(params.length)} = 0 ORDER BY rn`,
      params,
    );
    return rows.map((r) => ({ objectId: r.objectId, version: Number(r.version) }));
  }

  async getMeta(keys: ObjectKey[]): Promise<ObjectMeta[]> {
    if (keys.length === 0) return [];
    await this.init();
    const { rows } = await this.query<MetaRow>(this.byKeys(this.metaColumns()), keyArrays(keys));
    return rows.map(toMeta);
  }

  /** `select` of the rows of the keys given as $1 (ids) and $2 (versions), in the order given */
  private byKeys(select: string): string {
    const c = this.c;
    // the lateral subquery resolves the table's columns first, whatever they are called
    return `SELECT o.* FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS k(id, v, ord)
       CROSS JOIN LATERAL (SELECT ${select} FROM ${this.t} WHERE ${c.objectId} = k.id AND ${c.version} = k.v) AS o
       ORDER BY k.ord`;
  }

  async get(keys: ObjectKey[]): Promise<StoredObject[]> {
    if (keys.length === 0) return [];
    await this.init();
    const sql = this.byKeys(`${this.metaColumns()}, ${this.c.content} AS "content"`);
    const params = keyArrays(keys);
    if (!this.blobs) {
      const { rows } = await this.query<ContentRow>(sql, params);
      return rows.map((r) => ({ ...toMeta(r), content: r.content }));
    }
    // under the shared lock no blob these rows reference can be collected before it is read
    return this.transaction(async (client) => {
      await this.lockBlobs(client, 'shared');
      const { rows } = await client.query<ReferenceRow>(sql, params);
      const out: StoredObject[] = [];
      for (const r of rows) out.push(await this.readReferenced(r));
      return out;
    });
  }

  /** The blob a row references, checked against the row's size and sha256. */
  private async readReferenced(row: ReferenceRow): Promise<StoredObject> {
    const meta = toMeta(row);
    const what = `${meta.objectId}@${meta.version}`;
    const sha = BlobDir.digestOf(row.content);
    if (sha === undefined)
      throw new Error(`${what}: content reference ${JSON.stringify(row.content)} is not a blob path <sha[0:2]>/<sha>`);
    if (sha !== meta.sha256)
      throw new Error(`${what}: content reference ${row.content} is not the blob of its sha256 ${meta.sha256}`);
    return { ...meta, content: await this.blobs!.read(sha, meta.size, what) };
  }

  /** the transaction-scoped advisory lock on this table's blobs (see BLOB_LOCK) */
  private async lockBlobs(client: pg.PoolClient, mode: 'shared' | 'exclusive'): Promise<void> {
    const fn = mode === 'shared' ? 'pg_advisory_xact_lock_shared' : 'pg_advisory_xact_lock';
    await client.query(`SELECT ${fn}(${BLOB_LOCK}, $1::regclass::oid::int)`, [this.t]);
  }

  async put(objects: StoredObject[]): Promise<void> {
    objects.forEach(assertContent);
    if (objects.length === 0) return;
    await this.init();
    // one row per key (the last one wins, as sequential upserts would): ON CONFLICT cannot touch a row twice
    const byKey = new Map<string, StoredObject>();
    for (const o of objects) byKey.set(JSON.stringify([o.objectId, o.version]), o);
    const rows = [...byKey.values()];
    if (this.blobs) await this.putReferenced(rows);
    else await this.transaction((client) => this.upsert(client, rows));
  }

  /**
   * Blobs first (atomically, verified), then the rows in the same transaction, which holds the shared blob lock
   * throughout; the blobs the rows referenced before are collected after the commit. A crash in between leaves
   * at most a blob no row references, never a row referencing no blob.
   */
  private async putReferenced(rows: StoredObject[]): Promise<void> {
    const blobs = this.blobs!;
    const replaced = await this.transaction(async (client) => {
      await this.lockBlobs(client, 'shared');
      const contents = new Map(rows.map((o) => [o.sha256, o.content]));
      for (const [sha, content] of contents) await blobs.write(sha, content);
      const previous = await this.referencesOf(client, rows);
      await this.upsert(client, rows);
      const current = new Set([...contents.keys()].map((sha) => BlobDir.reference(sha)));
      return previous.filter((ref) => !current.has(ref));
    });
    await this.collect(replaced);
  }

  /** the content references the rows of these keys hold now */
  private async referencesOf(client: pg.PoolClient, keys: ObjectKey[]): Promise<string[]> {
    const c = this.c;
    const { rows } = await client.query<{ ref: string }>(
      `SELECT o.${c.content} AS ref FROM ${this.t} o JOIN unnest($1::text[], $2::bigint[]) AS k(id, v) ON o.${c.objectId} = k.id AND o.${c.version} = k.v`,
      keyArrays(keys),
    );
    return rows.map((r) => r.ref);
  }

  /** Upserts the rows: content bytes in statements of at most MAX_STATEMENT_BYTES, or references all in one. */
  private async upsert(client: pg.PoolClient, rows: StoredObject[]): Promise<void> {
    const weight = (o: StoredObject) => (this.blobs ? 0 : o.content.length);
    const chunks: StoredObject[][] = [[]];
    let bytes = 0;
    for (const o of rows) {
      if (bytes > 0 && bytes + weight(o) > MAX_STATEMENT_BYTES) {
        chunks.push([]);
        bytes = 0;
      }
      chunks[chunks.length - 1]!.push(o);
      bytes += weight(o);
    }
    const c = this.c;
    const shaColumn = this.computedSha ? '' : `, ${c.sha256}`;
    const shaValue = this.computedSha ? '' : ', x.sha';
    const shaUpdate = this.computedSha ? '' : `, ${c.sha256} = excluded.${c.sha256}`;
    const contentType = this.blobs ? 'text' : 'bytea';
    const sql = `INSERT INTO ${this.t} (${c.objectId}, ${c.version}, ${c.content}, ${c.size}${shaColumn}, ${c.createdAt}, ${c.updatedAt})
      SELECT x.id, x.v, x.content, x.size${shaValue}, to_timestamp(x.created / 1000.0), to_timestamp(x.updated / 1000.0)
      FROM unnest($1::text[], $2::bigint[], $3::${contentType}[], $4::bigint[], $5::text[], $6::bigint[], $7::bigint[]) AS x(id, v, content, size, sha, created, updated)
      ON CONFLICT (${c.objectId}, ${c.version}) DO UPDATE SET ${c.content} = excluded.${c.content}, ${c.size} = excluded.${c.size}${shaUpdate}, ${c.createdAt} = excluded.${c.createdAt}, ${c.updatedAt} = excluded.${c.updatedAt}`;
    for (const chunk of chunks) {
      await client.query(sql, [
        chunk.map((o) => o.objectId),
        chunk.map((o) => o.version),
        chunk.map((o) => (this.blobs ? BlobDir.reference(o.sha256) : o.content)),
        chunk.map((o) => o.size),
        chunk.map((o) => o.sha256),
        chunk.map((o) => o.createdAt),
        chunk.map((o) => o.updatedAt),
      ]);
    }
  }

  /** Removes the rows, then (content by reference) the blobs no remaining row references. */
  async delete(keys: ObjectKey[]): Promise<void> {
    if (keys.length === 0) return;
    await this.init();
    const c = this.c;
    const { rows } = await this.query<{ ref: string }>(
      `DELETE FROM ${this.t} WHERE (${c.objectId}, ${c.version}) IN (SELECT k.id, k.v FROM unnest($1::text[], $2::bigint[]) AS k(id, v))${this.blobs ? ` RETURNING ${c.content} AS ref` : ''}`,
      keyArrays(keys),
    );
    if (this.blobs) await this.collect(rows.map((r) => r.ref));
  }

  /**
   * Unlinks the blobs of these references that no row references any more (several rows may share one), under
   * the exclusive blob lock so no put can be between writing such a blob and committing its row.
   */
  private async collect(references: string[]): Promise<void> {
    // a malformed reference (someone else's row) never becomes a path
    const shas = references.map((ref) => BlobDir.digestOf(ref)).filter((sha): sha is string => sha !== undefined);
    if (shas.length === 0) return;
    const c = this.c;
    await this.transaction(async (client) => {
      await this.lockBlobs(client, 'exclusive');
      await this.blobs!.collect(shas, async (candidates) => {
        const { rows } = await client.query<{ ref: string }>(
          `SELECT DISTINCT ${c.content} AS ref FROM ${this.t} WHERE ${c.content} = ANY($1::text[])`,
          [candidates.map((sha) => BlobDir.reference(sha))],
        );
        return new Set(rows.map((r) => BlobDir.digestOf(r.ref)!));
      });
    });
  }

  /** The pool belongs to the caller, who ends it. */
  async close(): Promise<void> {}
}
