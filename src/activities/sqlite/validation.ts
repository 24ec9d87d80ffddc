import type { SqliteTargetConfig } from '../../shared/schemas.js';
import { inThread, type CheckResult } from './thread.js';

/** The seed's validation checklist (§2.4 step 5, §5.2) on one database file, with every problem named. */
export interface ValidationReport {
  ok: boolean;
  problems: string[];
  integrity: string;
  foreignKeyViolations: number;
  tables: number;
  indexes: number;
  triggers: number;
  missingCoreTables: string[];
  rows: Record<string, number | null>;
  sql: Array<{ name: string; value: unknown; ok: boolean; error?: string }>;
  schemaDigest?: string;
  pageSize?: number;
  pageCount?: number;
}

/** `expect` of a smoke query: a value, or a comparison such as ">= 1", "> 0", "!= 0" */
export function expectationHolds(expect: string | number | undefined, value: unknown): boolean {
  if (expect === undefined) return true;
  if (typeof expect === 'number') return Number(value) === expect;
  const m = /^\s*(>=|<=|!=|=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$/.exec(expect);
  if (!m) return String(value) === expect;
  const v = Number(value);
  const x = Number(m[2]);
  switch (m[1]) {
    case '>=':
      return v >= x;
    case '<=':
      return v <= x;
    case '>':
      return v > x;
    case '<':
      return v < x;
    case '!=':
      return v !== x;
    default:
      return v === x;
  }
}

export async function validateDatabase(
  path: string,
  config: SqliteTargetConfig,
  options: { integrity?: 'quick' | 'full'; sql?: boolean; coreTables?: string[]; peek?: boolean } = {},
): Promise<ValidationReport> {
  const core = options.coreTables ?? config.validation.coreTables;
  const queries = options.sql === false ? [] : config.smoke.sql;
  const r: CheckResult = await inThread('check', {
    path,
    integrity: options.integrity ?? 'full',
    foreignKeys: config.validation.foreignKeys,
    rowsOf: core,
    sql: queries.map((q) => ({ query: q.query })),
    peek: options.peek,
  });
  if (r.openError) {
    return {
      ok: false,
      problems: [`cannot open: ${r.openError}`],
      integrity: r.openError,
      foreignKeyViolations: 0,
      tables: 0,
      indexes: 0,
      triggers: 0,
      missingCoreTables: core,
      rows: {},
      sql: [],
    };
  }
  const problems: string[] = [];
  const integrity = r.integrity.length === 0 ? 'not checked' : r.integrity.join('; ');
  if (r.integrity.length > 0 && !(r.integrity.length === 1 && r.integrity[0] === 'ok'))
    problems.push(`integrity: ${integrity.slice(0, 500)}`);
  if (r.foreignKeyViolations > 0) problems.push(`${r.foreignKeyViolations} foreign key violations`);
  const missingCoreTables = core.filter((t) => !r.tableNames.includes(t));
  if (missingCoreTables.length) problems.push(`core tables missing: ${missingCoreTables.join(', ')}`);
  if (r.indexes < config.validation.minIndexes)
    problems.push(`${r.indexes} indexes, expected at least ${config.validation.minIndexes}`);
  if (r.tables < config.validation.minTables)
    problems.push(`${r.tables} tables, expected at least ${config.validation.minTables}`);
  const sql = queries.map((q, i) => {
    const got = r.sql[i]!;
    const ok = !got.error && expectationHolds(q.expect, got.value);
    if (!ok)
      problems.push(
        `smoke query ${q.name ?? q.query}: ${got.error ?? `got ${JSON.stringify(got.value)}, expected ${q.expect}`}`,
      );
    return { name: q.name ?? q.query, value: got.value ?? null, ok, ...(got.error ? { error: got.error } : {}) };
  });
  return {
    ok: problems.length === 0,
    problems,
    integrity,
    foreignKeyViolations: r.foreignKeyViolations,
    tables: r.tables,
    indexes: r.indexes,
    triggers: r.triggers,
    missingCoreTables,
    rows: r.rows,
    sql,
    schemaDigest: r.schemaDigest,
    pageSize: r.pageSize,
    pageCount: r.pageCount,
  };
}

/** One line for a step summary. */
export const summarizeValidation = (v: ValidationReport): string =>
  v.ok
    ? `integrity ${v.integrity}, ${v.tables} tables, ${v.indexes} indexes, ${v.foreignKeyViolations} FK violations`
    : `FAILED: ${v.problems.join('; ')}`;

/**
 * "No data loss detected" (seed §5.2): the row counts a restored copy has against those its backup's manifest
 * recorded, per table the manifest counted. A missing table or a count that differs is a problem, named.
 */
export function rowCountProblems(expected: Record<string, number | null>, actual: Record<string, number | null>) {
  const problems: string[] = [];
  for (const [table, rows] of Object.entries(expected)) {
    if (rows === null) continue;
    const got = actual[table];
    if (got === undefined || got === null) problems.push(`rows of ${table}: table missing (manifest: ${rows})`);
    else if (got !== rows) problems.push(`rows of ${table}: ${got}, the backup's manifest says ${rows}`);
  }
  return problems;
}
