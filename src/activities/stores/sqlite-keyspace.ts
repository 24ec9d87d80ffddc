import { setImmediate as nextTurn } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { rowFingerprint } from './fingerprint.js';
import { keysetPages, rangeClause, rangeParams } from './sql.js';
import {
  type FingerprintList,
  type FingerprintProbe,
  type KeyRange,
  type ObjectKey,
  type ObjectMeta,
  type SegmentSummary,
  StoreConfigError,
} from './types.js';

/** the command that creates or migrates what a read-only open finds missing */
export const PREPARE_COMMAND = '`npx runbook dual-write prepare --env <env> --target <target>`';
/** the command that installs, checks and removes change tracking (see ChangeTracking) */
export const TRACK_COMMAND = '`npx runbook dual-write track --env <env> --target <target>`';

/**
 * Opens a SQLite database. Read-only (detection, dry runs) never creates, migrates or converts anything: the
 * file must exist, its journal mode is left alone and `query_only` refuses every write; closing it leaves the
 * files as they were (a writable connection that wrote nothing, where a read-only one would leave -wal/-shm files
 * behind). Otherwise the file is created when missing and switched to WAL.
 */
export function openSqlite(path: string, readOnly: boolean | undefined, what: string): Database.Database {
  if (!readOnly) {
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    return db;
  }
  let db: Database.Database;
  try {
    db = new Database(path, { fileMustExist: true });
  } catch (error) {
    throw new StoreConfigError(
      `${what}: ${path} cannot be opened (${(error as Error).message}); check the path, or create it with ${PREPARE_COMMAND}`,
    );
  }
  db.pragma('query_only = ON');
  db.pragma('busy_timeout = 5000');
  return db;
}

/** Quoted column names of a SQLite table holding object metadata. */
export interface SqliteColumns {
  table: string;
  objectId: string;
  version: string;
  sha256: string;
  size: string;
  createdAt: string;
  updatedAt: string;
  /** stored rowFingerprint() column; NULL in a row means "not known, compute it" */
  fingerprint?: string;
}

/** The SQL function computing rowFingerprint() from a row's columns (registered on every connection we open). */
const FP_FUNCTION = 'dr_fingerprint';

/**
 * Key order is the id column's own collation, which must be BINARY (SQLite's default, bytewise like Postgres'
 * "C"): a COLLATE clause inside the row-value comparison would stop SQLite from using the primary key.
 */

/**
 * Range reads over object metadata in SQLite, shared by the SQLite table store and the object store's index:
 * keyset scans in bytewise key order, in-database segment checksums over stored (or computed) fingerprints,
 * and the keys that cut a range into segments.
 */
export class SqliteKeyspace {
  private readonly metaColumns: string;
  /** SQL for a row's fingerprint: the stored column, computed when NULL */
  readonly fingerprintSql: string;
  /** SQL computing the fingerprint from the row's columns */
  readonly computedFingerprintSql: string;
  private readonly statements = new Map<string, Database.Statement>();

  constructor(
    private readonly db: Database.Database,
    private readonly c: SqliteColumns,
  ) {
    this.metaColumns = `${c.objectId} AS objectId, ${c.version} AS version, ${c.size} AS size, ${c.sha256} AS sha256, ${c.createdAt} AS createdAt, ${c.updatedAt} AS updatedAt`;
    this.computedFingerprintSql = `${FP_FUNCTION}(${[c.objectId, c.version, c.sha256, c.size, c.createdAt, c.updatedAt].join(', ')})`;
    this.fingerprintSql = c.fingerprint
      ? `coalesce(${c.fingerprint}, ${this.computedFingerprintSql})`
      : this.computedFingerprintSql;
    db.function(FP_FUNCTION, { deterministic: true }, ((
      id: string,
      version: number,
      sha: string,
      size: number,
      created: number,
      updated: number,
    ) =>
      rowFingerprint({
        objectId: id,
        version: Number(version),
        sha256: sha,
        size: Number(size),
        createdAt: Number(created),
        updatedAt: Number(updated),
      })) as never);
  }

  /** (key, fingerprint) index: segment sums and key steps read it instead of the wide rows */
  createCoveringIndex(name: string): void {
    const c = this.c;
    if (!c.fingerprint) throw new Error(`${c.table}: no fingerprint column`);
    this.db.exec(`CREATE INDEX IF NOT EXISTS ${name} ON ${c.table} (${c.objectId}, ${c.version}, ${c.fingerprint})`);
  }

  /**
   * The trigger that clears a stored fingerprint whenever a writer other than our stores changes a row's key or
   * metadata without writing the fingerprint. SQLite has no md5, so a trigger cannot compute the value: a cleared
   * (NULL) fingerprint is computed at comparison time instead (fingerprintSql).
   */
  createInvalidationTrigger(name: string): void {
    const c = this.c;
    const fp = c.fingerprint;
    if (!fp) throw new Error(`${c.table}: no fingerprint column`);
    const changed = [c.objectId, c.version, c.sha256, c.size, c.createdAt, c.updatedAt]
      .map((col) => `NEW.${col} IS NOT OLD.${col}`)
      .join(' OR ');
    this.db.exec(
      `CREATE TRIGGER IF NOT EXISTS ${name} AFTER UPDATE ON ${c.table} FOR EACH ROW WHEN NEW.${fp} IS OLD.${fp} AND NEW.${fp} IS NOT NULL AND (${changed})
       BEGIN UPDATE ${c.table} SET ${fp} = NULL WHERE ${c.objectId} = NEW.${c.objectId} AND ${c.version} = NEW.${c.version}; END`,
    );
  }

  get selectMeta(): string {
    return this.metaColumns;
  }

  get stored(): boolean {
    return Boolean(this.c.fingerprint);
  }

  where(range: KeyRange, params: unknown[], afterFrom = false): string {
    return rangeClause(range, this.c.objectId, this.c.version, params, () => '?', { afterFrom });
  }

  get orderBy(): string {
    return `ORDER BY ${this.c.objectId}, ${this.c.version}`;
  }

  /** prepared once per SQL text */
  private statement(sql: string): Database.Statement {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  /**
   * The statement `name` over `range` (its bounds appended to `params`), prepared once per range shape (which
   * bounds it has): segment comparison runs thousands of them, and building their SQL text each time costs more
   * than running them.
   */
  private ranged(
    name: string,
    range: KeyRange,
    params: unknown[],
    build: (where: string) => string,
    afterFrom = false,
  ): Database.Statement {
    const key = `${name}/${range.from ? (afterFrom ? '>' : '[') : '('}${range.to ? ')' : '-'}`;
    let stmt = this.statements.get(key);
    if (!stmt) {
      stmt = this.db.prepare(build(this.where(range, [], afterFrom)));
      this.statements.set(key, stmt);
    }
    rangeParams(range, params);
    return stmt;
  }

  scan(range: KeyRange, pageSize: number): AsyncGenerator<ObjectMeta[]> {
    return keysetPages(range, pageSize, (r, after) => {
      const params: unknown[] = [];
      const stmt = this.ranged(
        'scan',
        r,
        params,
        (where) => `SELECT ${this.metaColumns} FROM ${this.c.table} WHERE ${where} ${this.orderBy} LIMIT ?`,
        after,
      );
      return stmt.all(...params, pageSize) as ObjectMeta[];
    });
  }

  getMeta(keys: ObjectKey[]): ObjectMeta[] {
    const stmt = this.statement(
      `SELECT ${this.metaColumns} FROM ${this.c.table} WHERE ${this.c.objectId} = ? AND ${this.c.version} = ?`,
    );
    return keys
      .map((k) => stmt.get(k.objectId, k.version) as ObjectMeta | undefined)
      .filter((m): m is ObjectMeta => Boolean(m));
  }

  /**
   * count, Σ high and Σ low signed 32-bit halves of the fingerprints; SQLite sums exactly in 64 bits, read as
   * bigint. With a stored column the sums read the (key, fingerprint) index alone; only a range holding cleared
   * (NULL) fingerprints is summed again computing them from the rows.
   */
  summarize(range: KeyRange): SegmentSummary {
    const sums = (fp: string) =>
      `count(*) AS count, coalesce(sum(${fp} >> 32), 0) AS h1, coalesce(sum((${fp} << 32) >> 32), 0) AS h2`;
    type Sums = { count: bigint; stored: bigint; h1: bigint; h2: bigint };
    const params: unknown[] = [];
    let row: Sums | undefined;
    if (this.c.fingerprint) {
      const fp = this.c.fingerprint;
      row = this.ranged(
        'sum-stored',
        range,
        params,
        (where) => `SELECT ${sums(fp)}, count(${fp}) AS stored FROM ${this.c.table} WHERE ${where}`,
      )
        .safeIntegers(true)
        .get(...params) as Sums;
      if (row.stored !== row.count) row = undefined;
      params.length = 0;
    }
    row ??= this.ranged(
      'sum',
      range,
      params,
      (where) => `SELECT ${sums(this.fingerprintSql)} FROM ${this.c.table} WHERE ${where}`,
    )
      .safeIntegers(true)
      .get(...params) as Sums;
    return { count: Number(row.count), h1: row.h1.toString(), h2: row.h2.toString() };
  }

  /**
   * One summary per range. Waits a turn of the event loop first: the call is synchronous, and the other side's
   * query (another process) should already be on its way when this one blocks the thread.
   */
  async summarizeRanges(ranges: KeyRange[]): Promise<SegmentSummary[]> {
    await nextTurn();
    return ranges.map((r) => this.summarize(r));
  }

  /**
   * One group_concat per range: a segment's fingerprints cross from SQLite to JavaScript as one string, in key
   * order (the subquery's, which SQLite keeps, read from the covering index); a range with cleared fingerprints
   * is read again computing them, as in summarize().
   */
  async fingerprintLists(ranges: KeyRange[]): Promise<FingerprintList[]> {
    await nextTurn();
    const c = this.c;
    const list = (fp: string, where: string) =>
      `SELECT count(*) AS count, count(fp) AS stored, coalesce(group_concat(fp, ','), '') AS list FROM (SELECT ${fp} AS fp FROM ${c.table} WHERE ${where} ${this.orderBy})`;
    type List = { count: number; stored: number; list: string };
    return ranges.map((range) => {
      const params: unknown[] = [];
      let row = this.ranged('list-stored', range, params, (where) =>
        list(c.fingerprint ?? this.computedFingerprintSql, where),
      ).get(...params) as List;
      if (row.stored !== row.count) {
        params.length = 0;
        row = this.ranged('list', range, params, (where) => list(this.fingerprintSql, where)).get(...params) as List;
      }
      return row.list;
    });
  }

  /**
   * One indexed read per range: the keys of the range whose stored fingerprint is asked for are found on the
   * (key, fingerprint) index (just read by fingerprintLists, so in cache), the rows by their keys. Fingerprints
   * not found stored (cleared by a foreign writer) are looked for again among the range's cleared ones, computed.
   */
  metaByFingerprint(probes: FingerprintProbe[]): ObjectMeta[] {
    const c = this.c;
    const out: ObjectMeta[] = [];
    for (const { range, fingerprints } of probes) {
      if (!fingerprints.length) continue;
      // one fingerprint (sparse drift) binds as an integer, several as a JSON array
      const one = fingerprints.length === 1;
      const asked = one ? BigInt(fingerprints[0]!) : `[${fingerprints.join(',')}]`;
      const among = one ? '= ?' : 'IN (SELECT value FROM json_each(?))';
      const params: unknown[] = [];
      let rows: ObjectMeta[] = [];
      if (c.fingerprint) {
        const stored = c.fingerprint;
        const stmt = this.ranged(
          one ? 'meta-by-fp' : 'meta-by-fps',
          range,
          params,
          (where) =>
            `SELECT ${this.metaColumns} FROM ${c.table} WHERE (${c.objectId}, ${c.version}) IN (SELECT ${c.objectId}, ${c.version} FROM ${c.table} WHERE ${where} AND ${stored} ${among})`,
        );
        rows = stmt.all(...params, asked) as ObjectMeta[];
        params.length = 0;
      }
      // fewer rows than fingerprints: some are not stored (only cleared ones can match here, no row twice)
      if (rows.length < fingerprints.length) {
        const cleared = c.fingerprint ? `${c.fingerprint} IS NULL AND ` : '';
        const stmt = this.ranged(
          one ? 'meta-by-computed-fp' : 'meta-by-computed-fps',
          range,
          params,
          (where) =>
            `SELECT ${this.metaColumns} FROM ${c.table} WHERE ${where} AND ${cleared}${this.computedFingerprintSql} ${among}`,
        );
        for (const m of stmt.all(...params, asked) as ObjectMeta[]) rows.push(m);
      }
      for (const m of rows) out.push(m);
    }
    return out;
  }

  /** Keys at positions step, 2·step, … from the start of the range, each found from the previous one (O(step) per key). */
  stepKeys(range: KeyRange, step: number, max: number): ObjectKey[] {
    if (!(step >= 1)) throw new Error(`segment step must be at least 1, got ${step}`);
    const keys: ObjectKey[] = [];
    let from = range.from;
    let after = false;
    while (keys.length < max) {
      const params: unknown[] = [];
      const stmt = this.ranged(
        'step',
        { from, to: range.to },
        params,
        (where) =>
          `SELECT ${this.c.objectId} AS objectId, ${this.c.version} AS version FROM ${this.c.table} WHERE ${where} ${this.orderBy} LIMIT 1 OFFSET ?`,
        after,
      );
      const k = stmt.get(...params, after ? step - 1 : step) as ObjectKey | undefined;
      if (!k) break;
      keys.push(k);
      from = k;
      after = true;
    }
    return keys;
  }
}

/**
 * The reads the SQLite table store and the object store answer alike from their keyspace (the ObjectStoreAdapter
 * methods detection uses); both answer in this process.
 */
export abstract class SqliteKeyspaceReads {
  protected abstract readonly keys: SqliteKeyspace;
  readonly inProcess = true;

  scan(range: KeyRange, pageSize: number): AsyncIterable<ObjectMeta[]> {
    return this.keys.scan(range, pageSize);
  }

  async summarize(range: KeyRange): Promise<SegmentSummary> {
    return this.keys.summarize(range);
  }

  summarizeRanges(ranges: KeyRange[]): Promise<SegmentSummary[]> {
    return this.keys.summarizeRanges(ranges);
  }

  fingerprintLists(ranges: KeyRange[]): Promise<FingerprintList[]> {
    return this.keys.fingerprintLists(ranges);
  }

  async metaByFingerprint(probes: FingerprintProbe[]): Promise<ObjectMeta[]> {
    return this.keys.metaByFingerprint(probes);
  }

  async stepKeys(range: KeyRange, step: number, max: number): Promise<ObjectKey[]> {
    return this.keys.stepKeys(range, step, max);
  }

  async getMeta(keys: ObjectKey[]): Promise<ObjectMeta[]> {
    return this.keys.getMeta(keys);
  }

  fingerprintSource(): 'stored' | 'computed' {
    return this.keys.stored ? 'stored' : 'computed';
  }
}
