import { randomInt } from 'node:crypto';
import type Database from 'better-sqlite3';
import { TRACK_COMMAND } from './sqlite-keyspace.js';
import { quoteIdentifier } from './sql.js';
import type { ChangeSet, ChangeTracking, ObjectKey, TrackingStatus } from './types.js';

/** Control rows of the changes table: ids starting with SEP never name an object. */
const SENTINEL = '\x1fsentinel';
const PRUNED = '\x1fpruned';
const CONTROL = `char(31) || 'sentinel'`;

/** The table tracked: its name as configured (optionally schema.table) and its quoted key columns. */
export interface SqliteTrackedTable {
  table: string;
  objectId: string;
  version: string;
}

/**
 * Change tracking of a SQLite table (the object store's index, or a SQLite table store): a changes table
 * `<table>_dr_changes (object_id, version, seq)` with one row per key written since tracking was installed, kept
 * by three row triggers (insert, update — old and new key —, delete) that fire whoever writes the file. SQLite
 * has one writer at a time, so a counter orders the writes as they commit: the sentinel row (the installation's
 * random epoch as its version) holds it, each trigger bumps it and stamps the key with it. A reader's mark is the
 * counter as its read transaction saw it; the keys changed after mark M are the rows stamped above M. Reading
 * never writes (a read-only connection reads the marks); `prune` deletes the marks at or below a mark.
 *
 * Status: the three triggers exist with the SQL installed and the sentinel row is there (a DELETE of the changes
 * table removes it). The identity is the epoch: a new one at every installation.
 */
export class SqliteTracking implements ChangeTracking {
  private readonly changesTable: string;
  private readonly seqIndex: string;
  private readonly triggers: Array<{ name: string; sql: string }>;
  /** the schema qualifier of the table ('' for main): triggers and the changes table live beside it */
  private readonly schema: string;

  constructor(
    private readonly db: Database.Database,
    private readonly t: SqliteTrackedTable,
  ) {
    const parts = t.table.split('.');
    const base = parts.pop()!;
    this.schema = parts.length ? `${quoteIdentifier(parts[0]!, 'schema name')}.` : '';
    const name = (suffix: string) => quoteIdentifier(`${base.slice(0, 63 - suffix.length)}${suffix}`, 'derived name');
    this.changesTable = name('_dr_changes');
    this.seqIndex = name('_dr_changes_seq');
    const table = quoteIdentifier(base, 'table name');
    const ch = this.changesTable;
    const bump = `UPDATE ${ch} SET seq = seq + 1 WHERE object_id = ${CONTROL};`;
    // delete + insert, not INSERT OR REPLACE: the writing statement's conflict policy would override the trigger's
    const mark = (row: 'NEW' | 'OLD') =>
      `DELETE FROM ${ch} WHERE object_id = ${row}.${t.objectId} AND version = ${row}.${t.version}; INSERT INTO ${ch} (object_id, version, seq) VALUES (${row}.${t.objectId}, ${row}.${t.version}, coalesce((SELECT seq FROM ${ch} WHERE object_id = ${CONTROL}), 0));`;
    const trigger = (suffix: string, event: string, body: string[]) => {
      const n = name(suffix);
      return {
        name: n.slice(1, -1),
        sql: `CREATE TRIGGER ${n} AFTER ${event} ON ${table} BEGIN ${body.join(' ')} END`,
      };
    };
    this.triggers = [
      trigger('_dr_track_i', 'INSERT', [bump, mark('NEW')]),
      trigger('_dr_track_u', 'UPDATE', [bump, mark('OLD'), mark('NEW')]),
      trigger('_dr_track_d', 'DELETE', [bump, mark('OLD')]),
    ];
  }

  describe(): string {
    return `changes table ${this.changesTable}, triggers ${this.triggers.map((t) => t.name).join(', ')} on ${this.t.table}`;
  }

  private read(): { status: TrackingStatus; seq?: number; prunedUpTo?: number } {
    const master = `${this.schema}sqlite_master`;
    const sqlOf = this.db.prepare(`SELECT sql FROM ${master} WHERE type = ? AND name = ?`).pluck();
    const fail = (why: string) => ({ status: { intact: false, why: `${why}; install it with ${TRACK_COMMAND}` } });
    const hasTable = sqlOf.get('table', this.changesTable.slice(1, -1)) !== undefined;
    const found = this.triggers.map((t) => sqlOf.get('trigger', t.name) as string | undefined);
    if (!hasTable && found.every((s) => s === undefined))
      return fail(`change tracking is not installed on ${this.t.table}`);
    if (!hasTable) return fail(`changes table ${this.changesTable} is missing`);
    for (const [i, t] of this.triggers.entries()) {
      if (found[i] === undefined) return fail(`trigger ${t.name} is missing`);
      if (found[i] !== t.sql) return fail(`trigger ${t.name} was changed`);
    }
    const control = this.db
      .prepare(
        `SELECT object_id AS objectId, version, seq FROM ${this.schema}${this.changesTable} WHERE object_id IN (?, ?)`,
      )
      .all(SENTINEL, PRUNED) as Array<{ objectId: string; version: number; seq: number }>;
    const sentinel = control.find((r) => r.objectId === SENTINEL);
    if (!sentinel) return fail(`changes table ${this.changesTable} was emptied (its sentinel row is gone)`);
    const pruned = control.find((r) => r.objectId === PRUNED);
    return {
      status: { intact: true, identity: String(sentinel.version) },
      seq: sentinel.seq,
      ...(pruned ? { prunedUpTo: pruned.seq } : {}),
    };
  }

  async status(): Promise<TrackingStatus> {
    return this.read().status;
  }

  async changes(since: string | undefined, limit: number): Promise<ChangeSet> {
    // one read transaction: the counter, the status and the marks from the same state of the file
    return this.db.transaction((): ChangeSet => {
      const { status, seq, prunedUpTo } = this.read();
      const mark = String(seq ?? 0);
      if (!status.intact || since === undefined) return { status, mark, keys: [] };
      const after = Number(since);
      if (!Number.isSafeInteger(after)) throw new Error(`not a SQLite change mark: ${JSON.stringify(since)}`);
      if (prunedUpTo !== undefined && prunedUpTo > after)
        return { status, mark, overflow: 'marks after the last check were pruned' };
      const rows = this.db
        .prepare(
          `SELECT object_id AS objectId, version FROM ${this.schema}${this.changesTable} WHERE seq > ? ORDER BY seq LIMIT ?`,
        )
        .all(after, limit + 3) as ObjectKey[];
      const keys = rows.filter((r) => !r.objectId.startsWith('\x1f'));
      if (keys.length > limit) return { status, mark, overflow: `more than ${limit} keys changed` };
      return { status, mark, keys };
    })();
  }

  async install(): Promise<TrackingStatus> {
    return this.db
      .transaction((): TrackingStatus => {
        const before = this.read().status;
        if (before.intact) return before;
        const ch = `${this.schema}${this.changesTable}`;
        this.db.exec(
          `CREATE TABLE IF NOT EXISTS ${ch} (object_id TEXT NOT NULL, version INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (object_id, version)) WITHOUT ROWID`,
        );
        // marks of a broken installation describe nothing any reader can continue from
        this.db.exec(`DELETE FROM ${ch}`);
        this.db.exec(`CREATE INDEX IF NOT EXISTS ${this.schema}${this.seqIndex} ON ${this.changesTable} (seq)`);
        for (const t of this.triggers) {
          this.db.exec(`DROP TRIGGER IF EXISTS ${this.schema}${quoteIdentifier(t.name, 'trigger name')}`);
          // the trigger is created in the table's schema (its name qualified; sqlite_master keeps the SQL as written)
          this.db.exec(this.schema ? t.sql.replace('CREATE TRIGGER ', `CREATE TRIGGER ${this.schema}`) : t.sql);
        }
        this.db
          .prepare(`INSERT INTO ${ch} (object_id, version, seq) VALUES (?, ?, 0)`)
          .run(SENTINEL, randomInt(1, 2 ** 47));
        return this.read().status;
      })
      .immediate();
  }

  async remove(): Promise<void> {
    this.db
      .transaction(() => {
        for (const t of this.triggers)
          this.db.exec(`DROP TRIGGER IF EXISTS ${this.schema}${quoteIdentifier(t.name, 'trigger name')}`);
        this.db.exec(`DROP TABLE IF EXISTS ${this.schema}${this.changesTable}`);
      })
      .immediate();
  }

  async prune(upTo: string): Promise<number> {
    const n = Number(upTo);
    if (!Number.isSafeInteger(n)) throw new Error(`not a SQLite change mark: ${JSON.stringify(upTo)}`);
    const ch = `${this.schema}${this.changesTable}`;
    return this.db
      .transaction(() => {
        const { changes } = this.db
          .prepare(`DELETE FROM ${ch} WHERE seq <= ? AND object_id NOT IN (?, ?)`)
          .run(n, SENTINEL, PRUNED);
        this.db
          .prepare(
            `INSERT INTO ${ch} (object_id, version, seq) VALUES (?, 0, ?) ON CONFLICT (object_id, version) DO UPDATE SET seq = max(seq, excluded.seq)`,
          )
          .run(PRUNED, n);
        return changes;
      })
      .immediate();
  }
}
