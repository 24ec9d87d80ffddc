import type Database from 'better-sqlite3';
import { assertContent, rowFingerprint } from './fingerprint.js';
import { openSqlite, PREPARE_COMMAND, SqliteKeyspace, SqliteKeyspaceReads } from './sqlite-keyspace.js';
import { DEFAULT_COLUMNS, quoteIdentifier, type ColumnMap } from './sql.js';
import { SqliteTracking } from './sqlite-tracking.js';
import { type ObjectKey, type ObjectStoreAdapter, StoreConfigError, type StoredObject } from './types.js';
import type { ChangeTracking } from './types.js';

export interface SqliteTableConfig {
  path: string;
  table: string;
  columns?: Partial<ColumnMap>;
  /** create the table when missing (demo, tests) */
  create?: boolean;
  /** false: do not refuse a configured fingerprint column whose trigger is missing (to install it) */
  check?: boolean;
  /** open for reading only: the file and table must exist, nothing is created or changed */
  readOnly?: boolean;
}

type Row = {
  objectId: string;
  version: number;
  size: number;
  sha256: string;
  createdAt: number;
  updatedAt: number;
  content?: Buffer;
};

/**
 * Objects in one SQLite table (better-sqlite3). Fingerprints are summed inside SQLite: from the `fingerprint`
 * column when one is configured (written by put(); a trigger clears it when anyone else changes the row's
 * metadata, and a NULL is computed on the fly), otherwise computed per row by a registered function.
 */
export class SqliteTableStore extends SqliteKeyspaceReads implements ObjectStoreAdapter {
  private readonly db: Database.Database;
  private readonly t: string;
  private readonly c: Record<keyof ColumnMap, string>;
  protected readonly keys: SqliteKeyspace;
  private readonly fp: string | undefined;
  /** change tracking of the table (changes table and triggers), installed by `runbook dual-write track` */
  readonly tracking: ChangeTracking;

  constructor(private readonly config: SqliteTableConfig) {
    super();
    if (config.columns?.sha256 === null)
      throw new Error(`sqlite table ${config.table}: a sha256 column is required (columns.sha256 may not be null)`);
    const columns = { ...DEFAULT_COLUMNS, ...config.columns };
    this.t = quoteIdentifier(config.table, 'table name');
    this.c = Object.fromEntries(
      Object.entries({ ...columns, sha256: columns.sha256 ?? 'sha256' }).map(([k, v]) => [
        k,
        quoteIdentifier(v as string, `column name for ${k}`),
      ]),
    ) as Record<keyof ColumnMap, string>;
    this.fp = columns.fingerprint ? this.c.fingerprint : undefined;
    if (config.readOnly && config.create) throw new Error(`sqlite table ${config.table}: create needs a writable open`);
    this.db = openSqlite(config.path, config.readOnly, `sqlite table ${config.table}`);
    if (config.readOnly && this.tableColumns().length === 0) {
      this.db.close();
      throw new StoreConfigError(`sqlite table ${config.table}: no such table in ${config.path}`);
    }
    if (config.create) {
      const c = this.c;
      const fp = this.fp ? `, ${this.fp} INTEGER` : '';
      this.db.exec(
        `CREATE TABLE IF NOT EXISTS ${this.t} (${c.objectId} TEXT NOT NULL, ${c.version} INTEGER NOT NULL, ${c.content} BLOB NOT NULL, ${c.size} INTEGER NOT NULL, ${c.sha256} TEXT NOT NULL, ${c.createdAt} INTEGER NOT NULL, ${c.updatedAt} INTEGER NOT NULL${fp}, PRIMARY KEY (${c.objectId}, ${c.version})) WITHOUT ROWID`,
      );
    }
    this.keys = new SqliteKeyspace(this.db, { table: this.t, ...this.c, fingerprint: this.fp });
    this.tracking = new SqliteTracking(this.db, {
      table: config.table,
      objectId: this.c.objectId,
      version: this.c.version,
    });
    if (this.fp) {
      if (config.create) this.installFingerprint();
      else if (config.check !== false) this.checkFingerprint();
    }
  }

  private get triggerName(): string {
    return quoteIdentifier(`${this.config.table.replace('.', '_')}_dr_fingerprint`, 'trigger name');
  }

  /**
   * Adds the fingerprint column (when missing) and the trigger that clears it when another writer changes a
   * row's metadata without writing it (see SqliteKeyspace.createInvalidationTrigger); idempotent.
   */
  installFingerprint(): void {
    const fp = this.fp;
    if (!fp)
      throw new Error(`sqlite table ${this.config.table}: no fingerprint column is configured (columns.fingerprint)`);
    const columns = this.tableColumns();
    this.db.transaction(() => {
      if (!columns.includes(fp.slice(1, -1))) this.db.exec(`ALTER TABLE ${this.t} ADD COLUMN ${fp} INTEGER`);
      this.keys.createInvalidationTrigger(this.triggerName);
      this.keys.createCoveringIndex(quoteIdentifier(`${this.config.table.replace('.', '_')}_dr_fp_idx`, 'index name'));
    })();
  }

  private tableColumns(): string[] {
    return this.db
      .prepare(`SELECT name FROM pragma_table_info(?)`)
      .pluck()
      .all(this.config.table.split('.').pop()) as string[];
  }

  /** Refuses to trust a fingerprint column nothing keeps correct. */
  private checkFingerprint(): void {
    const name = this.triggerName.slice(1, -1);
    const found = this.db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?`).get(name);
    if (!found) {
      throw new StoreConfigError(
        `sqlite table ${this.config.table}: fingerprint column ${this.fp} is configured but its trigger ${name} is missing; install it with ${PREPARE_COMMAND}`,
      );
    }
  }

  describe(): string {
    return `sqlite ${this.config.path} table ${this.config.table}`;
  }

  async get(keys: ObjectKey[]): Promise<StoredObject[]> {
    const stmt = this.db.prepare(
      `SELECT ${this.keys.selectMeta}, ${this.c.content} AS content FROM ${this.t} WHERE ${this.c.objectId} = ? AND ${this.c.version} = ?`,
    );
    return keys
      .map((k) => stmt.get(k.objectId, k.version) as Row | undefined)
      .filter((r): r is Row & { content: Buffer } => Boolean(r));
  }

  async put(objects: StoredObject[]): Promise<void> {
    objects.forEach(assertContent);
    const c = this.c;
    const fpColumn = this.fp ? `, ${this.fp}` : '';
    const fpValue = this.fp ? ', ?' : '';
    const fpUpdate = this.fp ? `, ${this.fp} = excluded.${this.fp}` : '';
    const stmt = this.db.prepare(
      `INSERT INTO ${this.t} (${c.objectId}, ${c.version}, ${c.content}, ${c.size}, ${c.sha256}, ${c.createdAt}, ${c.updatedAt}${fpColumn}) VALUES (?, ?, ?, ?, ?, ?, ?${fpValue})
       ON CONFLICT (${c.objectId}, ${c.version}) DO UPDATE SET ${c.content} = excluded.${c.content}, ${c.size} = excluded.${c.size}, ${c.sha256} = excluded.${c.sha256}, ${c.createdAt} = excluded.${c.createdAt}, ${c.updatedAt} = excluded.${c.updatedAt}${fpUpdate}`,
    );
    this.db.transaction(() => {
      for (const o of objects) {
        const values: unknown[] = [o.objectId, o.version, o.content, o.size, o.sha256, o.createdAt, o.updatedAt];
        if (this.fp) values.push(rowFingerprint(o));
        stmt.run(...values);
      }
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
