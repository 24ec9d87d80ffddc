import type pg from 'pg';
import { TRACK_COMMAND } from '../sqlite-keyspace.js';
import { quoteIdentifier } from '../sql.js';
import type { ChangeSet, ChangeTracking, ObjectKey, TrackingStatus } from '../types.js';
import type { PostgresTable } from './table.js';

/** Control rows of the changes table: ids starting with SEP never name an object. */
const SENTINEL = '\x1fsentinel';
const PRUNED = '\x1fpruned';
const TRUNCATED = '\x1ftruncated';

/** The statement triggers: event, tgtype (AFTER, FOR EACH STATEMENT: INSERT 4, DELETE 8, UPDATE 16, TRUNCATE 32), transition tables. */
const TRIGGERS = [
  { suffix: '_dr_track_i', event: 'INSERT', tgtype: 4, referencing: 'REFERENCING NEW TABLE AS dr_new' },
  {
    suffix: '_dr_track_u',
    event: 'UPDATE',
    tgtype: 16,
    referencing: 'REFERENCING OLD TABLE AS dr_old NEW TABLE AS dr_new',
  },
  { suffix: '_dr_track_d', event: 'DELETE', tgtype: 8, referencing: 'REFERENCING OLD TABLE AS dr_old' },
  { suffix: '_dr_track_t', event: 'TRUNCATE', tgtype: 32, referencing: '' },
] as const;

interface Names {
  /** schema-qualified, quoted */
  changes: string;
  xidIndex: string;
  fn: string;
  /** unquoted trigger names (as pg_trigger has them) */
  triggers: string[];
}

/** a pooled client in a transaction, or the table (statements through the pool) */
type Client = { query<R extends pg.QueryResultRow>(text: string, params: unknown[]): Promise<pg.QueryResult<R>> };

/** xmin of a pg_snapshot's text form `xmin:xmax:xip,…` */
const snapshotXmin = (snapshot: string): bigint => {
  const m = /^(\d+):\d+:[\d,]*$/.exec(snapshot);
  if (!m) throw new Error(`not a Postgres snapshot: ${JSON.stringify(snapshot)}`);
  return BigInt(m[1]!);
};

/**
 * Change tracking of a Postgres table: a changes table `<table>_dr_changes (object_id, version, xid)` holding one
 * row per key written since tracking was installed, with the id of the last transaction that wrote it
 * (`pg_current_xact_id()`), kept by four statement-level triggers (insert, update — old and new keys —, delete
 * through transition tables; truncate marks "everything") that fire whoever writes, in replica mode too
 * (`ENABLE ALWAYS`), through a SECURITY DEFINER function (writers need no grant on the changes table).
 *
 * A reader's mark is a Postgres snapshot (`pg_current_snapshot()`), taken in the same REPEATABLE READ transaction
 * that reads the marks: the keys changed after mark M are the rows whose xid is not visible in M. A transaction
 * still running when M was taken is not visible in M, so its keys are read next time, whenever it commits (a
 * sequence number would lose it: it commits after a reader saw a higher one). The marks are not consumed: a
 * reader that fails reads them again; `prune` deletes those every later reader has seen.
 *
 * Status: the four triggers exist, are ENABLE ALWAYS, call the function, the function's body is the one installed,
 * and the sentinel row of the installation is in the changes table (a TRUNCATE or a DELETE of it removes the
 * sentinel). The identity (the sentinel's xid and the triggers' oids) changes with every installation.
 */
export class PostgresTracking implements ChangeTracking {
  private names: Names | undefined;

  constructor(
    private readonly table: PostgresTable,
    private readonly ready: () => Promise<void>,
  ) {}

  describe(): string {
    const n = this.names;
    return n
      ? `changes table ${n.changes}, triggers ${n.triggers.join(', ')} on ${this.table.t}`
      : `change tracking of ${this.table.t}`;
  }

  /** names derived from the table's, in the table's own schema */
  private async resolve(client?: Client): Promise<Names> {
    if (this.names) return this.names;
    const q = client ?? this.table;
    const { rows } = await q.query<{ schema: string }>(
      `SELECT n.nspname AS schema FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::regclass`,
      [this.table.t],
    );
    const schema = quoteIdentifier(rows[0]!.schema, 'schema name');
    this.names = {
      changes: `${schema}.${this.table.derivedName('_dr_changes')}`,
      xidIndex: this.table.derivedName('_dr_changes_xid'),
      fn: `${schema}.${this.table.derivedName('_dr_track_fn')}`,
      triggers: TRIGGERS.map((t) => this.table.derivedName(t.suffix).slice(1, -1)),
    };
    return this.names;
  }

  /** the trigger function's body: upserts the written keys with the writing transaction's id */
  private body(n: Names): string {
    const { objectId: id, version: v } = this.table.c;
    const upsert = (select: string) =>
      `INSERT INTO ${n.changes} AS c (object_id, version, xid) ${select}
      ON CONFLICT (object_id, version) DO UPDATE SET xid = excluded.xid WHERE c.xid IS DISTINCT FROM excluded.xid;`;
    const keys = (rows: string) => `SELECT ${id}, ${v} FROM ${rows}`;
    return `
BEGIN
  IF TG_OP = 'INSERT' THEN
    ${upsert(`SELECT k.${id}, k.${v}, pg_current_xact_id() FROM (${keys('dr_new')} GROUP BY 1, 2) AS k`)}
  ELSIF TG_OP = 'UPDATE' THEN
    ${upsert(`SELECT k.${id}, k.${v}, pg_current_xact_id() FROM (${keys('dr_new')} UNION ${keys('dr_old')}) AS k`)}
  ELSIF TG_OP = 'DELETE' THEN
    ${upsert(`SELECT k.${id}, k.${v}, pg_current_xact_id() FROM (${keys('dr_old')} GROUP BY 1, 2) AS k`)}
  ELSE
    ${upsert(`VALUES (chr(31) || 'truncated', 0, pg_current_xact_id())`)}
  END IF;
  RETURN NULL;
END`;
  }

  async status(): Promise<TrackingStatus> {
    await this.ready();
    return (await this.read(this.table)).status;
  }

  /** the status, and the pruned-before xid (when marks were pruned) */
  private async read(q: Client): Promise<{ status: TrackingStatus; prunedBefore?: bigint }> {
    const n = await this.resolve(q);
    const { rows } = await q.query<{
      has_table: boolean;
      fn: string | null;
      src: string | null;
      triggers: Array<{ name: string; oid: string; enabled: string; fn: string; tgtype: number }>;
    }>(
      `SELECT to_regclass($1) IS NOT NULL AS has_table, to_regprocedure($2)::oid::text AS fn,
              (SELECT p.prosrc FROM pg_proc p WHERE p.oid = to_regprocedure($2)) AS src,
              (SELECT coalesce(json_agg(json_build_object('name', g.tgname, 'oid', g.oid::text, 'enabled', g.tgenabled, 'fn', g.tgfoid::text, 'tgtype', g.tgtype::int)), '[]')
                 FROM pg_trigger g WHERE g.tgrelid = $3::regclass AND g.tgname = ANY($4)) AS triggers`,
      [n.changes, `${n.fn}()`, this.table.t, n.triggers],
    );
    const row = rows[0]!;
    const fail = (why: string) => ({ status: { intact: false, why: `${why}; install it with ${TRACK_COMMAND}` } });
    const installed = row.has_table || row.fn || row.triggers.length;
    if (!installed) return fail(`change tracking is not installed on ${this.table.t}`);
    if (!row.has_table) return fail(`changes table ${n.changes} is missing`);
    if (!row.fn) return fail(`trigger function ${n.fn} is missing`);
    if (row.src !== this.body(n)) return fail(`trigger function ${n.fn} was changed`);
    const oids: string[] = [];
    for (const [i, t] of TRIGGERS.entries()) {
      const g = row.triggers.find((x) => x.name === n.triggers[i]);
      if (!g) return fail(`trigger ${n.triggers[i]} is missing`);
      if (g.enabled !== 'A')
        return fail(
          `trigger ${n.triggers[i]} is ${g.enabled === 'D' ? 'disabled' : 'not ENABLE ALWAYS (it was disabled)'}`,
        );
      if (g.fn !== row.fn || g.tgtype !== t.tgtype) return fail(`trigger ${n.triggers[i]} was changed`);
      oids.push(g.oid);
    }
    const control = await q.query<{ objectId: string; xid: string }>(
      `SELECT object_id AS "objectId", xid::text AS xid FROM ${n.changes} WHERE object_id = ANY($1)`,
      [[SENTINEL, PRUNED]],
    );
    const sentinel = control.rows.find((r) => r.objectId === SENTINEL);
    if (!sentinel) return fail(`changes table ${n.changes} was emptied (its sentinel row is gone)`);
    const pruned = control.rows.find((r) => r.objectId === PRUNED);
    return {
      status: { intact: true, identity: `${sentinel.xid}:${oids.join(',')}` },
      ...(pruned ? { prunedBefore: BigInt(pruned.xid) } : {}),
    };
  }

  async changes(since: string | undefined, limit: number): Promise<ChangeSet> {
    await this.ready();
    const n = await this.resolve();
    return this.table.transaction(async (client) => {
      // one snapshot for the mark, the status and the marks read
      await client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      const mark = (await client.query<{ mark: string }>('SELECT pg_current_snapshot()::text AS mark')).rows[0]!.mark;
      const { status, prunedBefore } = await this.read(client);
      if (!status.intact || since === undefined) return { status, mark, keys: [] };
      const xmin = snapshotXmin(since);
      if (prunedBefore !== undefined && prunedBefore > xmin)
        return { status, mark, overflow: 'marks after the last check were pruned' };
      const { rows } = await client.query<{ objectId: string; version: string }>(
        `SELECT object_id AS "objectId", version::text AS version FROM ${n.changes}
         WHERE xid >= $1::xid8 AND NOT pg_visible_in_snapshot(xid, $2::pg_snapshot) LIMIT $3`,
        [xmin.toString(), since, limit + 4],
      );
      if (rows.some((r) => r.objectId === TRUNCATED)) return { status, mark, overflow: 'the table was truncated' };
      const keys: ObjectKey[] = rows
        .filter((r) => !r.objectId.startsWith('\x1f'))
        .map((r) => ({ objectId: r.objectId, version: Number(r.version) }));
      if (keys.length > limit) return { status, mark, overflow: `more than ${limit} keys changed` };
      return { status, mark, keys };
    });
  }

  async install(): Promise<TrackingStatus> {
    await this.ready();
    return this.table.transaction(async (client) => {
      // writers wait for the few statements below; two installers do not interleave
      await client.query(`LOCK TABLE ${this.table.t} IN SHARE ROW EXCLUSIVE MODE`);
      const n = await this.resolve(client);
      const before = (await this.read(client)).status;
      if (before.intact) return before;
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${n.changes} (object_id text COLLATE "C" NOT NULL, version bigint NOT NULL, xid xid8 NOT NULL, PRIMARY KEY (object_id, version))`,
      );
      // marks of a broken installation describe nothing any reader can continue from
      await client.query(`TRUNCATE ${n.changes}`);
      await client.query(`CREATE INDEX IF NOT EXISTS ${n.xidIndex} ON ${n.changes} (xid)`);
      await client.query(
        `CREATE OR REPLACE FUNCTION ${n.fn}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $dr_track$${this.body(n)}$dr_track$`,
      );
      for (const [i, t] of TRIGGERS.entries()) {
        const name = quoteIdentifier(n.triggers[i]!, 'trigger name');
        await client.query(`DROP TRIGGER IF EXISTS ${name} ON ${this.table.t}`);
        await client.query(
          `CREATE TRIGGER ${name} AFTER ${t.event} ON ${this.table.t} ${t.referencing} FOR EACH STATEMENT EXECUTE FUNCTION ${n.fn}()`,
        );
        await client.query(`ALTER TABLE ${this.table.t} ENABLE ALWAYS TRIGGER ${name}`);
      }
      await client.query(`INSERT INTO ${n.changes} (object_id, version, xid) VALUES ($1, 0, pg_current_xact_id())`, [
        SENTINEL,
      ]);
      return (await this.read(client)).status;
    });
  }

  async remove(): Promise<void> {
    await this.ready();
    await this.table.transaction(async (client) => {
      await client.query(`LOCK TABLE ${this.table.t} IN SHARE ROW EXCLUSIVE MODE`);
      const n = await this.resolve(client);
      for (const name of n.triggers)
        await client.query(`DROP TRIGGER IF EXISTS ${quoteIdentifier(name, 'trigger name')} ON ${this.table.t}`);
      await client.query(`DROP FUNCTION IF EXISTS ${n.fn}()`);
      await client.query(`DROP TABLE IF EXISTS ${n.changes}`);
    });
  }

  /**
   * Deletes the marks of transactions older than `upTo`'s xmin (all visible in it) and records that xmin: a reader
   * continuing from an older mark is told its marks were pruned (and reads everything instead).
   */
  async prune(upTo: string): Promise<number> {
    await this.ready();
    const n = await this.resolve();
    const xmin = snapshotXmin(upTo).toString();
    return this.table.transaction(async (client) => {
      const { rowCount } = await client.query(
        `DELETE FROM ${n.changes} WHERE xid < $1::xid8 AND object_id <> ALL($2)`,
        [xmin, [SENTINEL, PRUNED]],
      );
      await client.query(
        `INSERT INTO ${n.changes} AS c (object_id, version, xid) VALUES ($1, 0, $2::xid8)
         ON CONFLICT (object_id, version) DO UPDATE SET xid = greatest(c.xid, excluded.xid)`,
        [PRUNED, xmin],
      );
      return rowCount ?? 0;
    });
  }
}
