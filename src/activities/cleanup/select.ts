import type pg from 'pg';
import { parseDuration } from '../../shared/duration.js';
import type { CleanupPredicate, CleanupRelation, CleanupTargetConfig } from '../../shared/schemas.js';
import { quoteIdentifier } from '../stores/sql.js';

/**
 * The SQL of a cleanup: selection by predicates, closure over the relations, orphan counts. Identifiers come from
 * the validated environment (sqlIdentifier) and are quoted; every value is a bound parameter.
 */

/** A pool or a client inside a transaction. */
export type Queryable = Pick<pg.ClientBase, 'query'>;

/** Table name → approved keys (as text, sorted). */
export type IdSets = Record<string, string[]>;

export const q = (name: string): string => quoteIdentifier(name);

/** `relation name` as the plan and the orphan counts show it: child.column → parent.column */
export const relationName = (r: CleanupRelation, c: CleanupTargetConfig): string =>
  `${r.table}.${r.column} → ${r.references}.${referencedColumn(r, c)}`;

export const referencedColumn = (r: CleanupRelation, c: CleanupTargetConfig): string =>
  r.referencedColumn ?? c.tables[r.references]!.key;

/** `x.key IN (the keys of ids)`, typed by the table's own row type (so the key's index serves it). */
export function keyIn(table: string, key: string, alias: string, params: unknown[], ids: string[]): string {
  params.push(JSON.stringify(ids.map((id) => ({ [key]: id }))));
  return `${alias}.${q(key)} IN (SELECT k.${q(key)} FROM json_populate_recordset(NULL::${q(table)}, $${params.length}::json) k)`;
}

function predicateSql(p: CleanupPredicate, params: unknown[], asOf: Date): string {
  const col = `t.${q(p.column)}`;
  const bind = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  if ('like' in p) return `${col} LIKE ${bind(p.like)}`;
  if ('ilike' in p) return `${col} ILIKE ${bind(p.ilike)}`;
  if ('equals' in p) return `${col} = ${bind(String(p.equals))}`;
  if ('after' in p) return `${col} >= ${bind(p.after)}`;
  if ('before' in p) return `${col} < ${bind(p.before)}`;
  return `${col} >= ${bind(new Date(asOf.getTime() - parseDuration(p.within)).toISOString())}`;
}

/** The WHERE of a table's own predicates, or undefined when it has none. */
export function whereSql(c: CleanupTargetConfig, table: string, params: unknown[], asOf: Date): string | undefined {
  const where = c.tables[table]!.where;
  if (!where) return undefined;
  const parts = where.all.map((p) => predicateSql(p, params, asOf));
  if (where.any.length) parts.unshift(`(${where.any.map((p) => predicateSql(p, params, asOf)).join(' OR ')})`);
  return parts.join(' AND ');
}

/** A human-readable form of a table's predicates (for the plan). */
export function describeWhere(c: CleanupTargetConfig, table: string): string | undefined {
  const where = c.tables[table]!.where;
  if (!where) return undefined;
  const one = (p: CleanupPredicate) => {
    const [op, value] = Object.entries(p).find(([k]) => k !== 'column')!;
    return `${p.column} ${op} ${JSON.stringify(value)}`;
  };
  const parts = where.all.map(one);
  if (where.any.length) parts.unshift(`(${where.any.map(one).join(' OR ')})`);
  return parts.join(' AND ');
}

async function keys(db: Queryable, text: string, params: unknown[]): Promise<string[]> {
  const r = await db.query<{ k: string }>(text, params);
  return r.rows.map((row) => row.k);
}

export class SelectionTooLarge extends Error {}

/**
 * The rows to delete: each table's own predicates, then the closure over the relations (rows referencing a
 * selected row; with selectReferenced, rows a selected row references) until nothing is added.
 */
export async function selectIds(db: Queryable, c: CleanupTargetConfig, asOf: Date, maxRows: number): Promise<IdSets> {
  const selected = new Map<string, Set<string>>(Object.keys(c.tables).map((t) => [t, new Set<string>()]));
  const total = () => [...selected.values()].reduce((n, s) => n + s.size, 0);
  const add = (table: string, found: string[]): boolean => {
    const set = selected.get(table)!;
    const before = set.size;
    for (const k of found) set.add(k);
    if (total() > maxRows) throw new SelectionTooLarge(`the selection exceeds maxRows (${maxRows}) at ${table}`);
    return set.size > before;
  };
  for (const [table, t] of Object.entries(c.tables)) {
    const params: unknown[] = [];
    const where = whereSql(c, table, params, asOf);
    if (where) add(table, await keys(db, `SELECT t.${q(t.key)}::text AS k FROM ${q(table)} t WHERE ${where}`, params));
  }
  for (let changed = true; changed;) {
    changed = false;
    for (const r of c.relations) {
      const child = c.tables[r.table]!;
      const parent = c.tables[r.references]!;
      const ref = referencedColumn(r, c);
      const parents = [...selected.get(r.references)!];
      if (parents.length) {
        const params: unknown[] = [];
        const found = await keys(
          db,
          `SELECT c.${q(child.key)}::text AS k FROM ${q(r.table)} c WHERE c.${q(r.column)} IN ` +
            `(SELECT p.${q(ref)} FROM ${q(r.references)} p WHERE ${keyIn(r.references, parent.key, 'p', params, parents)})`,
          params,
        );
        changed = add(r.table, found) || changed;
      }
      const children = [...selected.get(r.table)!];
      if (r.selectReferenced && children.length) {
        const params: unknown[] = [];
        const found = await keys(
          db,
          `SELECT p.${q(parent.key)}::text AS k FROM ${q(r.references)} p WHERE p.${q(ref)} IN ` +
            `(SELECT c.${q(r.column)} FROM ${q(r.table)} c WHERE ${keyIn(r.table, child.key, 'c', params, children)})`,
          params,
        );
        changed = add(r.references, found) || changed;
      }
    }
  }
  return Object.fromEntries([...selected].map(([t, s]) => [t, [...s].sort()]));
}

/** Per relation: rows whose reference is set but points at no row (the seed's "orphaned mappings"). */
export async function orphanCounts(db: Queryable, c: CleanupTargetConfig): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const r of c.relations) {
    const res = await db.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM ${q(r.table)} c WHERE c.${q(r.column)} IS NOT NULL AND NOT EXISTS ` +
        `(SELECT 1 FROM ${q(r.references)} p WHERE p.${q(referencedColumn(r, c))} = c.${q(r.column)})`,
    );
    out[relationName(r, c)] = Number(res.rows[0]!.n);
  }
  return out;
}

/** The rows of `ids` in `table` as row_to_json text, in key order (optionally locked FOR UPDATE). */
export async function rowsOf(
  db: Queryable,
  c: CleanupTargetConfig,
  table: string,
  ids: string[],
  lock = false,
): Promise<string[]> {
  if (!ids.length) return [];
  const key = c.tables[table]!.key;
  const params: unknown[] = [];
  const r = await db.query<{ j: string }>(
    `SELECT row_to_json(t)::text AS j FROM ${q(table)} t WHERE ${keyIn(table, key, 't', params, ids)} ` +
      `ORDER BY t.${q(key)}${lock ? ' FOR UPDATE' : ''}`,
    params,
  );
  return r.rows.map((row) => row.j);
}

/** Deletes the rows of `ids` from `table`; returns how many went. */
export async function deleteIds(db: Queryable, c: CleanupTargetConfig, table: string, ids: string[]): Promise<number> {
  if (!ids.length) return 0;
  const params: unknown[] = [];
  const r = await db.query(
    `DELETE FROM ${q(table)} t WHERE ${keyIn(table, c.tables[table]!.key, 't', params, ids)}`,
    params,
  );
  return r.rowCount ?? 0;
}

/** Inserts exported rows (row_to_json text) back; rows whose key (or any unique value) exists are left alone. */
export async function insertRows(db: Queryable, table: string, rows: string[]): Promise<number> {
  if (!rows.length) return 0;
  const r = await db.query(
    `INSERT INTO ${q(table)} SELECT * FROM json_populate_recordset(NULL::${q(table)}, $1::json) ON CONFLICT DO NOTHING`,
    [`[${rows.join(',')}]`],
  );
  return r.rowCount ?? 0;
}

/** A sample of the selected rows for the plan: the key and the label column. */
export async function sampleOf(
  db: Queryable,
  c: CleanupTargetConfig,
  table: string,
  ids: string[],
): Promise<Array<{ key: string; label?: string }>> {
  const t = c.tables[table]!;
  const some = ids.slice(0, c.sample);
  if (!some.length) return [];
  if (!t.label) return some.map((key) => ({ key }));
  const params: unknown[] = [];
  const r = await db.query<{ k: string; l: string | null }>(
    `SELECT t.${q(t.key)}::text AS k, t.${q(t.label)}::text AS l FROM ${q(table)} t ` +
      `WHERE ${keyIn(table, t.key, 't', params, some)} ORDER BY t.${q(t.key)}`,
    params,
  );
  return r.rows.map((row) => ({ key: row.k, label: row.l ?? undefined }));
}

/** Every column the configuration names, per table: checked against the catalog before anything is read. */
export function columnsNamed(c: CleanupTargetConfig): Array<{ table: string; column: string; field: string }> {
  const out: Array<{ table: string; column: string; field: string }> = [];
  for (const [table, t] of Object.entries(c.tables)) {
    out.push({ table, column: t.key, field: `tables.${table}.key` });
    if (t.label) out.push({ table, column: t.label, field: `tables.${table}.label` });
    for (const kind of ['any', 'all'] as const)
      t.where?.[kind].forEach((p, i) =>
        out.push({ table, column: p.column, field: `tables.${table}.where.${kind}.${i}.column` }),
      );
  }
  c.relations.forEach((r, i) => {
    out.push({ table: r.table, column: r.column, field: `relations.${i}.column` });
    out.push({ table: r.references, column: referencedColumn(r, c), field: `relations.${i}.referencedColumn` });
  });
  return out;
}
