import { mkdir, stat } from 'node:fs/promises';
import { quoteIdentifier } from '../sql.js';
import { StoreConfigError } from '../types.js';
import { PREPARE_COMMAND } from '../sqlite-keyspace.js';
import { C, type PostgresTable } from './table.js';

/**
 * The table's schema as the store needs it: created when `create` (demo, tests), the id column's collation read,
 * a content-reference column and blob root checked, and the stored fingerprint (column, trigger, covering index)
 * installed or, when someone else's table is opened, refused unless it is installed and kept by its trigger.
 */
export class PostgresSchema {
  constructor(private readonly table: PostgresTable) {}

  async prepare(): Promise<void> {
    if (this.table.blobs) await this.prepareBlobs();
    if (this.table.config.create) await this.createTable();
    await this.readCollation();
    if (this.table.blobs) await this.checkReferenceColumn();
    if (this.table.fp) {
      if (this.table.config.create) await this.addFingerprint();
      else await this.checkFingerprint();
    }
  }

  /** a column that already collates as "C" needs no COLLATE clause, and without one the primary key serves range queries */
  private async readCollation(): Promise<void> {
    // (with one, Postgres falls back to sequential scans)
    const { rows } = await this.table.query<{ coll: string | null }>(
      `SELECT a.attcollation::regcollation::text AS coll FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attname = $2`,
      [this.table.t, this.table.idColumnName],
    );
    const coll = rows[0]?.coll?.replaceAll('"', '');
    this.table.collate = coll === 'C' || coll === 'POSIX' ? '' : C;
  }

  /** names derived from the table: the trigger, its function (in the table's schema) and the covering index */
  private fingerprintNames(): { trigger: string; fn: string; index: string } {
    const parts = this.table.config.table.split('.');
    const schema = parts.length > 1 ? `${quoteIdentifier(parts[0]!, 'schema name')}.` : '';
    return {
      trigger: this.table.derivedName('_dr_fp'),
      fn: `${schema}${this.table.derivedName('_dr_fp_fn')}`,
      index: this.table.derivedName('_dr_fp_idx'),
    };
  }

  /**
   * Adds the fingerprint column, the trigger that sets it on every insert and update (whoever writes), fills it
   * for existing rows, makes it NOT NULL and adds a covering index (key, fingerprint) so segment checksums are
   * index-only scans; idempotent, in one transaction. On a large table the fill rewrites every row once: run it
   * (`npx runbook dual-write prepare`) in a quiet hour, not during an incident.
   */
  async installFingerprint(): Promise<void> {
    if (!this.table.fp)
      throw new Error(
        `postgres table ${this.table.config.table}: no fingerprint column is configured (columns.fingerprint)`,
      );
    if (this.table.config.create) await this.createTable();
    await this.readCollation();
    await this.addFingerprint();
  }

  private async addFingerprint(): Promise<void> {
    const fp = this.table.fp;
    if (!fp)
      throw new Error(
        `postgres table ${this.table.config.table}: no fingerprint column is configured (columns.fingerprint)`,
      );
    const { trigger, fn, index } = this.fingerprintNames();
    await this.table.transaction(async (client) => {
      // two installers at once (two workers preparing the same pair) must not interleave their DDL
      await client.query(`LOCK TABLE ${this.table.t} IN SHARE ROW EXCLUSIVE MODE`);
      await client.query(`ALTER TABLE ${this.table.t} ADD COLUMN IF NOT EXISTS ${fp} bigint`);
      await client.query(
        `CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN NEW.${fp} := ${this.table.computedFingerprint('NEW.')}; RETURN NEW; END $fn$`,
      );
      await client.query(`DROP TRIGGER IF EXISTS ${trigger} ON ${this.table.t}`);
      await client.query(
        `CREATE TRIGGER ${trigger} BEFORE INSERT OR UPDATE ON ${this.table.t} FOR EACH ROW EXECUTE FUNCTION ${fn}()`,
      );
      await client.query(
        `UPDATE ${this.table.t} SET ${fp} = ${this.table.computedFingerprint('')} WHERE ${fp} IS DISTINCT FROM ${this.table.computedFingerprint('')}`,
      );
      await client.query(`ALTER TABLE ${this.table.t} ALTER COLUMN ${fp} SET NOT NULL`);
      await client.query(
        `CREATE INDEX IF NOT EXISTS ${index} ON ${this.table.t} (${this.table.c.objectId}${this.table.collate}, ${this.table.c.version}) INCLUDE (${fp})`,
      );
    });
  }

  /** Refuses to trust a fingerprint column nothing keeps correct. */
  private async checkFingerprint(): Promise<void> {
    const { trigger } = this.fingerprintNames();
    const { rows } = await this.table.query<{ notnull: boolean | null; trigger: boolean }>(
      `SELECT (SELECT a.attnotnull FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attname = $2 AND NOT a.attisdropped) AS notnull,
              EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = $1::regclass AND g.tgname = $3 AND g.tgenabled <> 'D') AS trigger`,
      [this.table.t, this.table.fp!.slice(1, -1), trigger.slice(1, -1)],
    );
    const row = rows[0]!;
    if (!row.notnull || !row.trigger) {
      const what =
        row.notnull === null
          ? `column ${this.table.fp} does not exist`
          : !row.notnull
            ? `column ${this.table.fp} allows NULL`
            : `trigger ${trigger} is missing or disabled`;
      throw new StoreConfigError(
        `postgres table ${this.table.config.table}: fingerprint ${what}; install it with ${PREPARE_COMMAND}`,
      );
    }
  }

  private async createTable(): Promise<void> {
    const c = this.table.c;
    const sha = this.table.computedSha ? '' : `${c.sha256} text NOT NULL, `;
    // the fingerprint column itself is added by installFingerprint()
    await this.table.query(
      `CREATE TABLE IF NOT EXISTS ${this.table.t} (${c.objectId} text COLLATE "C" NOT NULL, ${c.version} integer NOT NULL, ${c.content} ${this.table.blobs ? 'text' : 'bytea'} NOT NULL, ${c.size} bigint NOT NULL, ${sha}${c.createdAt} timestamptz NOT NULL, ${c.updatedAt} timestamptz NOT NULL, PRIMARY KEY (${c.objectId}, ${c.version}))`,
      [],
    );
    // collection asks, per released blob, whether any row still references it
    if (this.table.blobs)
      await this.table.query(
        `CREATE INDEX IF NOT EXISTS ${this.table.derivedName('_dr_content_idx')} ON ${this.table.t} (${c.content})`,
        [],
      );
  }

  /** The blob directory is created with the table; otherwise it must exist: a wrong path must not start an empty one. */
  private async prepareBlobs(): Promise<void> {
    const root = this.table.blobs!.dir;
    if (this.table.config.create) await mkdir(root, { recursive: true });
    const isDir = await stat(root).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (!isDir)
      throw new StoreConfigError(
        `postgres table ${this.table.config.table}: contentReference.root ${root} is not an existing directory`,
      );
  }

  /** A bytea content column holds content, not references: refuse it rather than fail on every put. */
  private async checkReferenceColumn(): Promise<void> {
    const { rows } = await this.table.query<{ type: string | null }>(
      `SELECT (SELECT format_type(a.atttypid, NULL) FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attname = $2 AND NOT a.attisdropped) AS type`,
      [this.table.t, this.table.c.content.slice(1, -1)],
    );
    const type = rows[0]?.type;
    if (type !== 'text' && type !== 'character varying') {
      throw new StoreConfigError(
        `postgres table ${this.table.config.table}: contentReference needs a text content column, ${this.table.c.content} is ${type ?? 'missing'}`,
      );
    }
  }
}
