import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type pg from 'pg';
import { ErrorType } from '../../shared/constants.js';
import { cleanupDeleteOrder, type CleanupTargetConfig } from '../../shared/schemas.js';
import type { ApprovalPolicy, EscalationLevel } from '../../shared/types.js';
import {
  approvalPolicyOf,
  EnvironmentError,
  loadTarget,
  requireSection,
  withEnvironmentErrors,
  type LoadedTarget,
} from '../environment.js';
import type { StoreFactory } from '../stores/index.js';
import {
  commitFile,
  idSetBytes,
  readCommitRecord,
  readExport,
  readIdSet,
  writeCommitRecord,
  writeExport,
  writeIdSet,
  type ApprovedSet,
} from './files.js';
import {
  columnsNamed,
  deleteIds,
  describeWhere,
  insertRows,
  orphanCounts,
  q,
  relationName,
  rowsOf,
  sampleOf,
  selectIds,
  SelectionTooLarge,
  type IdSets,
} from './select.js';

export interface CleanupDeps {
  environmentsDir: string;
  stores: StoreFactory;
}

export interface TargetRef {
  environment: string;
  target: string;
}

/** What the workflow learns about a cleanup target: names and policies, never the connection string. */
export interface CleanupTargetDescription {
  environmentFile: string;
  urlEnv: string;
  workDir: string;
  /** delete order: children first */
  order: string[];
  selection: Record<string, string>;
  relations: string[];
  maxRows: number;
  approval: ApprovalPolicy;
  escalation: EscalationLevel[];
}

export interface Identification {
  asOf: string;
  /** sha256 of the id set file (written only when not a dry run) */
  idsDigest: string;
  written: boolean;
  counts: Record<string, number>;
  total: number;
  sample: Record<string, Array<{ key: string; label?: string }>>;
  /** orphans per relation before the run: verify expects them back */
  orphans: Record<string, number>;
}

const counted = (ids: IdSets) => Object.fromEntries(Object.entries(ids).map(([t, list]) => [t, list.length]));
const rolledBack = (message: string) =>
  ApplicationFailure.nonRetryable(`rolled back, nothing deleted: ${message}`, ErrorType.CleanupRolledBack);

/** Where two id sets differ, per table: "t: now 4, approved 3 (+1 not approved: 17)". */
function setDifferences(now: IdSets, approved: IdSets): string[] {
  const out: string[] = [];
  for (const table of Object.keys(approved)) {
    const a = new Set(approved[table]);
    const n = new Set(now[table] ?? []);
    const added = [...n].filter((k) => !a.has(k));
    const gone = [...a].filter((k) => !n.has(k));
    if (added.length || gone.length)
      out.push(
        `${table}: now ${n.size}, approved ${a.size}` +
          (added.length ? ` (+${added.length} not approved: ${added.slice(0, 5).join(', ')})` : '') +
          (gone.length ? ` (-${gone.length} no longer selected: ${gone.slice(0, 5).join(', ')})` : ''),
      );
  }
  return out;
}

export const createCleanupActivities = (deps: CleanupDeps) => {
  interface Opened {
    t: LoadedTarget;
    c: CleanupTargetConfig;
    pool: pg.Pool;
    dir: string;
    order: string[];
    where: string;
  }
  const open = (ref: TargetRef): Promise<Opened> =>
    withEnvironmentErrors(async () => {
      const t = await loadTarget(deps.environmentsDir, ref.environment, ref.target);
      const c = requireSection(t, 'cleanup');
      const where = `${t.file}: targets.${ref.target}.cleanup`;
      const order = cleanupDeleteOrder(Object.keys(c.tables), c.relations);
      // the schema refuses cycles; kept here for files validated by an older schema
      if ('cycle' in order)
        throw new EnvironmentError(`${where}.relations: form a cycle through ${order.cycle.join(', ')}`);
      return { t, c, pool: deps.stores.pool(c.urlEnv), dir: t.resolvePath(c.workDir), order: order.order, where };
    });

  /** Every table and column the configuration names exists (EnvironmentInvalid naming the field otherwise). */
  const checkCatalog = (o: Opened): Promise<void> =>
    withEnvironmentErrors(async () => {
      const columns = new Map<string, Set<string>>();
      for (const table of Object.keys(o.c.tables)) {
        const r = await o.pool.query<{ attname: string }>(
          `SELECT a.attname FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
          [q(table)],
        );
        if (!r.rows.length) throw new EnvironmentError(`${o.where}.tables.${table}: no such table in ${o.c.urlEnv}`);
        columns.set(table, new Set(r.rows.map((row) => row.attname)));
      }
      for (const { table, column, field } of columnsNamed(o.c)) {
        if (!columns.get(table)!.has(column))
          throw new EnvironmentError(`${o.where}.${field}: table ${table} has no column "${column}"`);
      }
    });

  const select = async (o: Opened, db: pg.ClientBase | pg.Pool, asOf: Date, maxRows: number): Promise<IdSets> => {
    try {
      return await selectIds(db, o.c, asOf, maxRows);
    } catch (err) {
      if (err instanceof SelectionTooLarge)
        throw ApplicationFailure.nonRetryable(
          `${o.where}: ${err.message}: narrow the predicates or raise maxRows`,
          ErrorType.VerificationFailed,
        );
      throw err;
    }
  };

  return {
    async describeCleanupTarget(ref: TargetRef): Promise<CleanupTargetDescription> {
      const o = await open(ref);
      await checkCatalog(o);
      return {
        environmentFile: o.t.file,
        urlEnv: o.c.urlEnv,
        workDir: o.dir,
        order: o.order,
        selection: Object.fromEntries(
          Object.keys(o.c.tables).map((table) => [table, describeWhere(o.c, table) ?? 'through its relations']),
        ),
        relations: o.c.relations.map(
          (r) => `${relationName(r, o.c)}${r.selectReferenced ? ' (selects referenced)' : ''}`,
        ),
        maxRows: o.c.maxRows,
        approval: approvalPolicyOf(o.t),
        escalation: o.t.config.escalation,
      };
    },

    /**
     * Read-only but for the id set file (not in a dry run): the rows selected now, their counts, a sample and the
     * orphan baseline. The id set goes to a private file named by its digest; only the digest reaches history.
     */
    async identifyTestData(ref: TargetRef & { maxRows: number; dryRun: boolean }): Promise<Identification> {
      const o = await open(ref);
      await checkCatalog(o);
      const asOf = new Date();
      const ids = await select(o, o.pool, asOf, ref.maxRows);
      const set: ApprovedSet = { asOf: asOf.toISOString(), tables: ids };
      const total = Object.values(ids).reduce((n, list) => n + list.length, 0);
      // a dry run writes nothing; an empty set has nothing to approve
      const written = !ref.dryRun && total > 0;
      const idsDigest = written ? await writeIdSet(o.dir, set) : idSetBytes(set).digest;
      const sample: Identification['sample'] = {};
      for (const [table, list] of Object.entries(ids)) sample[table] = await sampleOf(o.pool, o.c, table, list);
      const counts = counted(ids);
      return {
        asOf: set.asOf,
        idsDigest,
        written,
        counts,
        total,
        sample,
        orphans: await orphanCounts(o.pool, o.c),
      };
    },

    /** Every approved row, whole (row_to_json), to a file named by its digest: the undo's input. */
    async exportTestData(
      ref: TargetRef & { idsDigest: string },
    ): Promise<{ exportDigest: string; bytes: number; counts: Record<string, number> }> {
      const o = await open(ref);
      const set = await readIdSet(o.dir, ref.idsDigest);
      const rows: Record<string, string[]> = {};
      for (const table of o.order) {
        const ids = set.tables[table] ?? [];
        rows[table] = await rowsOf(o.pool, o.c, table, ids);
        if (rows[table].length !== ids.length)
          throw ApplicationFailure.nonRetryable(
            `${table}: ${ids.length - rows[table].length} of the ${ids.length} approved rows are gone since the approval`,
            ErrorType.PlanStale,
          );
      }
      const written = await writeExport(o.dir, rows);
      return { exportDigest: written.digest, bytes: written.bytes, counts: counted(set.tables) };
    },

    /**
     * ONE transaction: lock the approved rows and compare them with the export, select again and compare with the
     * approved set, delete children first by the approved keys, compare the counts deleted and the orphans; COMMIT
     * only when all hold, otherwise ROLLBACK and CleanupRolledBack. The transaction id is recorded before COMMIT so
     * the undo (and a retry) know whether this run's delete committed.
     */
    async deleteTestData(ref: TargetRef & { idsDigest: string; exportDigest: string }): Promise<{
      state: 'committed' | 'already committed';
      deleted: Record<string, number>;
      orphans: Record<string, number>;
    }> {
      const o = await open(ref);
      const set = await readIdSet(o.dir, ref.idsDigest);
      const exported = await readExport(o.dir, ref.exportDigest);
      const record = commitFile(runIdOfWorkflow(), ref.exportDigest);
      const earlier = await readCommitRecord(o.dir, record);
      if (earlier && (await txStatus(o.pool, earlier)) === 'committed')
        return { state: 'already committed', deleted: counted(set.tables), orphans: await orphanCounts(o.pool, o.c) };

      const client = await o.pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const xid = (await client.query<{ x: string }>('SELECT txid_current()::text AS x')).rows[0]!.x;
        await writeCommitRecord(o.dir, record, xid);
        for (const table of o.order) {
          const now = await rowsOf(client, o.c, table, set.tables[table] ?? [], true);
          const then = exported[table] ?? [];
          if (now.length !== then.length || now.some((row, i) => row !== then[i]))
            throw rolledBack(
              `${table}: ${now.length !== then.length ? `${now.length} of the ${then.length} approved rows are left` : 'approved rows changed'} since the export`,
            );
        }
        const again = await select(o, client, new Date(set.asOf), Number.MAX_SAFE_INTEGER);
        const differences = setDifferences(again, set.tables);
        if (differences.length)
          throw rolledBack(`the selection differs from the approved set: ${differences.join('; ')}`);
        const orphansBefore = await orphanCounts(client, o.c);
        const deleted: Record<string, number> = {};
        for (const table of o.order) {
          const expected = set.tables[table]?.length ?? 0;
          deleted[table] = await deleteIds(client, o.c, table, set.tables[table] ?? []);
          if (deleted[table] !== expected)
            throw rolledBack(`${table}: deleted ${deleted[table]} rows, approved ${expected}`);
        }
        const orphansAfter = await orphanCounts(client, o.c);
        const created = Object.entries(orphansAfter).filter(([r, n]) => n !== orphansBefore[r]);
        if (created.length)
          throw rolledBack(
            `the delete would orphan rows: ${created.map(([r, n]) => `${r}: ${orphansBefore[r]} → ${n}`).join('; ')}`,
          );
        await client.query('COMMIT');
        return { state: 'committed', deleted, orphans: orphansAfter };
      } catch (err) {
        await client.query('ROLLBACK').catch((e: Error) => (broken = e));
        const code = (err as { code?: unknown }).code;
        // a constraint (a foreign key the configuration does not name) refused the delete
        if (typeof code === 'string' && code.startsWith('23')) throw rolledBack(`${(err as Error).message} (${code})`);
        throw err;
      } finally {
        client.release(broken);
      }
    },

    /** After the commit: no approved or matching row is left, and every relation's orphans are at their baseline. */
    async verifyCleanup(
      ref: TargetRef & { idsDigest: string; orphans: Record<string, number> },
    ): Promise<{ remaining: number; orphans: Record<string, number> }> {
      const o = await open(ref);
      const set = await readIdSet(o.dir, ref.idsDigest);
      const problems: string[] = [];
      for (const table of o.order) {
        const left = (await rowsOf(o.pool, o.c, table, set.tables[table] ?? [])).length;
        if (left) problems.push(`${table}: ${left} approved rows still there`);
      }
      const again = await select(o, o.pool, new Date(set.asOf), Number.MAX_SAFE_INTEGER);
      const remaining = Object.values(again).reduce((n, l) => n + l.length, 0);
      for (const [table, list] of Object.entries(again))
        if (list.length) problems.push(`${table}: ${list.length} rows still match (${list.slice(0, 5).join(', ')})`);
      const orphans = await orphanCounts(o.pool, o.c);
      for (const [r, n] of Object.entries(orphans))
        if (n !== ref.orphans[r]) problems.push(`${r}: ${n} orphans, ${ref.orphans[r]} before the run`);
      if (problems.length)
        throw ApplicationFailure.nonRetryable(
          `cleanup not verified: ${problems.join('; ')}`,
          ErrorType.VerificationFailed,
        );
      return { remaining, orphans };
    },

    /**
     * The undo: when this run's delete committed, the exported rows go back, parents first, in one transaction
     * (ON CONFLICT DO NOTHING: a row already there stays as it is, so a second undo changes nothing).
     */
    async restoreTestData(
      ref: TargetRef & { exportDigest: string },
    ): Promise<{ state: 'restored' | 'nothing committed'; inserted: Record<string, number> }> {
      const o = await open(ref);
      const xid = await readCommitRecord(o.dir, commitFile(runIdOfWorkflow(), ref.exportDigest));
      const status = xid && (await txStatus(o.pool, xid));
      if (status === 'in progress')
        // the delete's connection is still open: its transaction ends (commit or rollback) before we can know
        throw ApplicationFailure.retryable(`the delete transaction ${xid} is still in progress`);
      if (status !== 'committed') return { state: 'nothing committed', inserted: {} };
      const rows = await readExport(o.dir, ref.exportDigest);
      const client = await o.pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const inserted: Record<string, number> = {};
        for (const table of [...o.order].reverse())
          inserted[table] = await insertRows(client, table, rows[table] ?? []);
        await client.query('COMMIT');
        return { state: 'restored', inserted };
      } catch (err) {
        await client.query('ROLLBACK').catch((e: Error) => (broken = e));
        throw err;
      } finally {
        client.release(broken);
      }
    },
  };
};

/** The run this activity belongs to (its commit record is per run). */
function runIdOfWorkflow(): string {
  const runId = Context.current().info.workflowExecution?.runId;
  if (!runId)
    throw ApplicationFailure.nonRetryable('cleanup activities run inside a workflow run', ErrorType.NotAuthorized);
  return runId;
}

async function txStatus(pool: pg.Pool, xid: string): Promise<string | null> {
  const r = await pool.query<{ s: string | null }>('SELECT txid_status($1::bigint) AS s', [xid]);
  return r.rows[0]!.s;
}

export type CleanupActivities = ReturnType<typeof createCleanupActivities>;
