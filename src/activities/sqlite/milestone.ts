import { ApplicationFailure } from '@temporalio/common';
import type { FlagValues } from '../adapters/types.js';
import { ErrorType } from '../../shared/constants.js';
import { invalidInput } from '../../shared/input.js';
import type { MilestoneConfig } from '../../shared/schemas.js';
import type { SqliteDeps } from './deps.js';
import { heartbeating } from './heartbeat.js';
import { loadSqliteTarget, type SqliteTarget, type TargetRef } from './target.js';
import { inThread, SqliteThreadError, type ThreadOps } from './thread.js';

// A milestone rollback (seed §2.2 memory system, §2.3 vector search), driven by the target's manifest
// (`sqlite.milestones.<name>`): what exists of the milestone, what depends on it, the statements that drop it in
// one transaction, the check that it is gone and the kept tables are untouched, and its flags.

export interface MilestoneRef extends TargetRef {
  milestone: string;
}

export interface MilestoneInspection {
  milestone: string;
  description?: string;
  /** the services stopped for the rollback (the manifest's stopServices, or all) */
  services: string[];
  /** tables that must come through unchanged (manifest keepTables, else validation.coreTables) */
  keepTables: string[];
  /** the milestone's objects that exist now */
  present: { tables: string[]; virtualTables: string[]; indexes: string[]; triggers: string[] };
  /** the manifest's objects that do not exist (already gone: their DROP ... IF EXISTS changes nothing) */
  absent: string[];
  /** rows of the milestone's tables (null: not there) */
  rows: Record<string, number | null>;
  resets: Array<{ table: string; set: Record<string, string | number | null>; rows: number | null }>;
  flags: { store?: string; current: FlagValues; desired: FlagValues };
  /** what the drop runs, in order, in one transaction */
  statements: string[];
}

type Objects = ThreadOps['objects']['result'];

const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;
const literal = (v: string | number | null) =>
  v === null ? 'NULL' : typeof v === 'number' ? String(v) : `'${v.replaceAll("'", "''")}'`;

function milestoneOf(t: SqliteTarget, name: string): MilestoneConfig {
  const m = t.config.milestones[name];
  if (!m) {
    const known = Object.keys(t.config.milestones);
    throw invalidInput(
      `milestone: "${name}" is not a milestone of ${t.loaded.file} targets.${t.loaded.targetName}.sqlite.milestones (known: ${known.join(', ') || 'none'})`,
    );
  }
  return m;
}

/** Tables FTS5 (and other virtual table modules) keep beside a virtual table: `<name>_data`, `<name>_idx`, … */
const shadowOf = (virtualTables: string[]) => (table: string) => virtualTables.some((v) => table.startsWith(`${v}_`));

/**
 * The statements that remove the milestone: triggers, indexes, virtual tables, then tables (a table that
 * references another of the milestone's tables goes before it), then the resets of rows that stay. Every name is
 * a validated identifier (sqlIdentifier), quoted; `IF EXISTS` keeps a retry after the commit harmless.
 */
export function milestoneStatements(m: MilestoneConfig, now: Objects): string[] {
  const tableNames = new Set(now.objects.filter((o) => o.type === 'table').map((o) => o.name));
  const inMilestone = new Set(m.tables);
  const ordered: string[] = [];
  const visit = (table: string, path: Set<string>) => {
    if (ordered.includes(table) || path.has(table)) return;
    path.add(table);
    // tables of the milestone that reference this one are dropped first (their implicit DELETE checks nothing)
    for (const fk of now.foreignKeys)
      if (fk.parent === table && inMilestone.has(fk.table) && fk.table !== table) visit(fk.table, path);
    ordered.push(table);
  };
  for (const table of m.tables) visit(table, new Set());
  const dropped = new Set([...m.tables, ...m.virtualTables]);
  return [
    ...m.triggers.map((n) => `DROP TRIGGER IF EXISTS ${quote(n)}`),
    ...m.indexes.map((n) => `DROP INDEX IF EXISTS ${quote(n)}`),
    ...m.virtualTables.map((n) => `DROP TABLE IF EXISTS ${quote(n)}`),
    ...ordered.map((n) => `DROP TABLE IF EXISTS ${quote(n)}`),
    ...m.reset
      .filter((r) => tableNames.has(r.table) && !dropped.has(r.table))
      .map(
        (r) =>
          `UPDATE ${quote(r.table)} SET ${Object.entries(r.set)
            .map(([column, value]) => `${quote(column)} = ${literal(value)}`)
            .join(', ')}`,
      ),
  ];
}

/** Which tables outside the milestone reference its tables and still hold rows (the rollback would break them). */
function dependentsOf(m: MilestoneConfig, now: Objects): Array<{ table: string; references: string }> {
  const own = new Set([...m.tables, ...m.virtualTables]);
  const isShadow = shadowOf(m.virtualTables);
  return now.foreignKeys
    .filter((fk) => own.has(fk.parent) && !own.has(fk.table) && !isShadow(fk.table))
    .map((fk) => ({ table: fk.table, references: fk.parent }));
}

const verificationFailed = (message: string) => ApplicationFailure.nonRetryable(message, ErrorType.VerificationFailed);

export const createSqliteMilestoneActivities = (deps: SqliteDeps) => {
  const load = (ref: TargetRef) => loadSqliteTarget(deps.environmentsDir, ref, deps.runner);

  return {
    /**
     * Read-only (a dry run's plan): what of the milestone exists, its rows, its flags, the statements of the drop.
     * An unknown milestone is InvalidInput naming the known ones; tables of other milestones that reference this
     * one's and hold rows refuse the rollback (InvalidInput, nothing changed): roll those back first.
     */
    async inspectMilestone(ref: MilestoneRef): Promise<MilestoneInspection> {
      const t = await load(ref);
      const m = milestoneOf(t, ref.milestone);
      const now = await heartbeating(
        inThread('objects', { path: t.db, rowsOf: [...m.tables, ...m.virtualTables], peek: true }),
      );
      const dependents = dependentsOf(m, now);
      if (dependents.length) {
        const { rows } = await inThread('objects', { path: t.db, rowsOf: dependents.map((d) => d.table), peek: true });
        const holding = dependents.filter((d) => (rows[d.table] ?? 0) > 0);
        if (holding.length) {
          const owners = [
            ...new Set(
              holding.flatMap((d) =>
                Object.entries(t.config.milestones)
                  .filter(([, o]) => o.tables.includes(d.table) || o.virtualTables.includes(d.table))
                  .map(([name]) => name),
              ),
            ),
          ];
          throw invalidInput(
            `milestone "${ref.milestone}" cannot be rolled back while ${holding
              .map((d) => `${d.table} (${rows[d.table]} rows) references ${d.references}`)
              .join(', ')}: ${owners.length ? `roll back ${owners.join(', ')} first` : 'remove those rows first'}`,
          );
        }
      }
      const names = new Map(now.objects.map((o) => [o.name, o]));
      const has = (type: string) => (n: string) => names.get(n)?.type === type;
      const present = {
        tables: m.tables.filter(has('table')),
        virtualTables: m.virtualTables.filter(has('table')),
        indexes: m.indexes.filter(has('index')),
        triggers: m.triggers.filter(has('trigger')),
      };
      const all = [...m.tables, ...m.virtualTables, ...m.indexes, ...m.triggers];
      const resetRows = m.reset.length
        ? (await inThread('objects', { path: t.db, rowsOf: m.reset.map((r) => r.table), peek: true })).rows
        : {};
      const flagNames = Object.keys(m.flags);
      const current = flagNames.length && t.flags ? await t.flags.read(flagNames) : {};
      return {
        milestone: ref.milestone,
        description: m.description,
        services: m.stopServices.length ? m.stopServices : Object.keys(t.services),
        keepTables: m.keepTables ?? t.config.validation.coreTables,
        present,
        absent: all.filter((n) => !names.has(n)),
        rows: now.rows,
        resets: m.reset.map((r) => ({ table: r.table, set: r.set, rows: resetRows[r.table] ?? null })),
        flags: { store: t.flags?.describe(), current, desired: m.flags },
        statements: milestoneStatements(m, now),
      };
    },

    /** Content digests of tables (all when none are named) and of the schema; the services are stopped. */
    async digestSqliteTables(ref: TargetRef & { tables?: string[] }): Promise<ThreadOps['digests']['result']> {
      const t = await load(ref);
      return heartbeating(inThread('digests', { path: t.db, tables: ref.tables }));
    },

    /**
     * Runs the approved statements in one transaction (foreign keys enforced): any failure rolls everything back
     * and nothing changed. The statements are rebuilt from the manifest and must be the approved ones (PlanStale).
     */
    async dropMilestone(ref: MilestoneRef & { statements: string[] }): Promise<{ changes: number[] }> {
      const t = await load(ref);
      const m = milestoneOf(t, ref.milestone);
      const now = await inThread('objects', { path: t.db });
      const statements = milestoneStatements(m, now);
      const own = new Set([...m.tables, ...m.virtualTables, ...m.indexes, ...m.triggers]);
      // a retry after the commit: the milestone is gone, the statements (table order, resets) may read differently
      if (!now.objects.some((o) => own.has(o.name)) && ref.statements.length > 0) {
        const probe = await inThread('objects', { path: t.db, rowsOf: m.reset.map((r) => r.table) });
        if (m.reset.every((r) => probe.rows[r.table] !== undefined)) return { changes: [] };
      }
      if (JSON.stringify(statements) !== JSON.stringify(ref.statements))
        throw ApplicationFailure.nonRetryable(
          `the statements for milestone "${ref.milestone}" differ from the approved plan (the manifest or the schema changed since)`,
          ErrorType.PlanStale,
        );
      try {
        const r = await heartbeating(inThread('transaction', { path: t.db, statements }));
        deps.log.warn({ target: `${ref.environment}/${ref.target}`, milestone: ref.milestone }, 'milestone dropped');
        return r;
      } catch (err) {
        // a busy database is worth a retry; anything else would fail the same way again
        if (err instanceof SqliteThreadError && err.code?.startsWith('SQLITE_BUSY')) throw err;
        throw verificationFailed(
          `drop of milestone "${ref.milestone}" rolled back, nothing changed: ${(err as Error).message}`,
        );
      }
    },

    /**
     * After the drop: none of the milestone's objects in sqlite_master, the kept tables' content digests equal
     * `before`, integrity_check and foreign_key_check clean, the core tables there. VerificationFailed otherwise.
     */
    async verifyMilestoneGone(
      ref: MilestoneRef & { before: Record<string, { rows: number; sha256: string }> },
    ): Promise<{ kept: Record<string, { rows: number; sha256: string }>; integrity: string; tables: number }> {
      const t = await load(ref);
      const m = milestoneOf(t, ref.milestone);
      const problems: string[] = [];
      const now = await inThread('objects', { path: t.db });
      const own = new Set([...m.tables, ...m.virtualTables, ...m.indexes, ...m.triggers]);
      const isShadow = shadowOf(m.virtualTables);
      const left = now.objects.filter((o) => own.has(o.name) || (o.type === 'table' && isShadow(o.name)));
      if (left.length) problems.push(`still there: ${left.map((o) => `${o.type} ${o.name}`).join(', ')}`);
      const keep = Object.keys(ref.before);
      const after = await heartbeating(inThread('digests', { path: t.db, tables: keep }));
      const changed = keep.filter((k) => after.tables[k]?.sha256 !== ref.before[k]!.sha256);
      if (changed.length) problems.push(`kept tables changed: ${changed.join(', ')}`);
      const check = await heartbeating(
        inThread('check', { path: t.db, integrity: 'full', foreignKeys: true, rowsOf: t.config.validation.coreTables }),
      );
      const integrity = check.openError ?? check.integrity.join('; ');
      if (integrity !== 'ok') problems.push(`integrity: ${integrity.slice(0, 300)}`);
      if (check.foreignKeyViolations) problems.push(`${check.foreignKeyViolations} foreign key violations`);
      const missing = t.config.validation.coreTables.filter((c) => !check.tableNames?.includes(c));
      if (missing.length) problems.push(`core tables missing: ${missing.join(', ')}`);
      if (problems.length) throw verificationFailed(`milestone "${ref.milestone}": ${problems.join('; ')}`);
      return { kept: after.tables, integrity, tables: check.tables };
    },

    /**
     * The target's flags (`sqlite.flags`): writes `values`; `expectCurrent` (the plan's "from") refuses a flag
     * someone changed since (PlanStale, nothing written); `onlyIfCurrent` (the undo) writes a flag back only while
     * it still holds what the run set.
     */
    async writeSqliteFlags(
      ref: TargetRef & { values: FlagValues; expectCurrent?: FlagValues; onlyIfCurrent?: FlagValues },
    ): Promise<{ changed: boolean; before: FlagValues; left?: string[] }> {
      const t = await load(ref);
      if (!t.flags)
        throw ApplicationFailure.nonRetryable(
          `${t.loaded.file}: targets.${ref.target}.sqlite.flags: not configured`,
          ErrorType.EnvironmentInvalid,
        );
      const before = await t.flags.read(Object.keys(ref.values));
      const unexpected = (k: string, expected: FlagValues) => before[k] !== ref.values[k] && before[k] !== expected[k];
      const stale = ref.expectCurrent ? Object.keys(ref.values).filter((k) => unexpected(k, ref.expectCurrent!)) : [];
      if (stale.length)
        throw ApplicationFailure.nonRetryable(
          `flags changed since the plan: ${stale.map((k) => `${k}=${String(before[k])}`).join(', ')}`,
          ErrorType.PlanStale,
        );
      const only = ref.onlyIfCurrent;
      const left = only ? Object.keys(ref.values).filter((k) => k in only && unexpected(k, only)) : [];
      const values = Object.fromEntries(Object.entries(ref.values).filter(([k]) => !left.includes(k)));
      const { changed } = Object.keys(values).length ? await t.flags.write(values) : { changed: false };
      deps.log.info({ target: `${ref.environment}/${ref.target}`, values, changed, left }, 'sqlite flags written');
      return { changed, before, ...(left.length ? { left } : {}) };
    },
  };
};
