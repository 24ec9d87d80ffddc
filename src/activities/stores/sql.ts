import type { KeyRange, ObjectKey, ObjectMeta } from './types.js';

export interface ColumnMap {
  objectId: string;
  version: string;
  content: string;
  size: string;
  /** hex sha256 column; when absent the store computes it from the content (Postgres) */
  sha256?: string;
  createdAt: string;
  updatedAt: string;
  /**
   * a 64-bit integer column holding rowFingerprint(), maintained by a trigger (installFingerprint()); when
   * absent, fingerprints are computed per row at every comparison
   */
  fingerprint?: string;
}

export const DEFAULT_COLUMNS: ColumnMap = {
  objectId: 'object_id',
  version: 'version',
  content: 'content',
  size: 'size',
  sha256: 'sha256',
  createdAt: 'created_at',
  updatedAt: 'updated_at',
};

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Validates and double-quotes an SQL identifier (schema-qualified names as "schema"."table"). */
export function quoteIdentifier(name: string, what = 'identifier'): string {
  const parts = name.split('.');
  if (parts.length > 2 || parts.some((p) => !IDENTIFIER.test(p)))
    throw new Error(`invalid ${what} "${name}": use letters, digits and _ (optionally schema.table)`);
  return parts.map((p) => `"${p}"`).join('.');
}

/** SQL expressions for one bound of a key range: placeholders, or columns of a joined row. */
export interface KeyBoundSql {
  id: string;
  version: string;
  /** the id again for the redundant id-only bound (a second placeholder when placeholders are positional) */
  idOnly?: string;
}

export interface KeyConditionOptions {
  /** COLLATE clause applied to every id comparison */
  collate?: string;
  /** the lower bound is exclusive (keyset pagination continues strictly after the last key seen) */
  afterFrom?: boolean;
  /**
   * add to each row-value bound a redundant bound on the id alone: Postgres' planner estimates and indexes those
   * well; SQLite serves the row values from the primary key and needs none
   */
  idBounds?: boolean;
}

/** Condition over the (objectId, version) row value: from `from` (inclusive) to `to` (exclusive); TRUE when unbounded. */
export function keyCondition(
  idCol: string,
  versionCol: string,
  bounds: { from?: KeyBoundSql; to?: KeyBoundSql },
  options: KeyConditionOptions = {},
): string {
  const k = options.collate ?? '';
  const parts: string[] = [];
  if (bounds.from) {
    parts.push(
      `(${idCol}${k}, ${versionCol}) ${options.afterFrom ? '>' : '>='} (${bounds.from.id}${k}, ${bounds.from.version})`,
    );
    if (options.idBounds) parts.push(`${idCol}${k} >= ${bounds.from.idOnly ?? bounds.from.id}${k}`);
  }
  if (bounds.to) {
    parts.push(`(${idCol}${k}, ${versionCol}) < (${bounds.to.id}${k}, ${bounds.to.version})`);
    if (options.idBounds) parts.push(`${idCol}${k} <= ${bounds.to.idOnly ?? bounds.to.id}${k}`);
  }
  return parts.length ? parts.join(' AND ') : 'TRUE';
}

/** Appends a range's bounds to `params` in the order rangeClause() numbers their placeholders. */
export function rangeParams(
  range: KeyRange,
  params: unknown[],
  options: Pick<KeyConditionOptions, 'idBounds'> = {},
): void {
  for (const key of [range.from, range.to]) {
    if (!key) continue;
    params.push(key.objectId, key.version);
    if (options.idBounds) params.push(key.objectId);
  }
}

/** keyCondition() over a KeyRange whose keys become parameters; `param(i)` renders the placeholder of params[i - 1]. */
export function rangeClause(
  range: KeyRange,
  idCol: string,
  versionCol: string,
  params: unknown[],
  param: (i: number) => string,
  options: KeyConditionOptions = {},
): string {
  let i = params.length;
  rangeParams(range, params, options);
  const bound = (key: ObjectKey | undefined): KeyBoundSql | undefined => {
    if (!key) return undefined;
    const sql: KeyBoundSql = { id: param(++i), version: param(++i) };
    if (options.idBounds) sql.idOnly = param(++i);
    return sql;
  };
  const from = bound(range.from);
  return keyCondition(idCol, versionCol, { from, to: bound(range.to) }, options);
}

/**
 * Keyset pagination shared by every store: `fetch(range, afterFrom)` returns up to `pageSize` rows in key
 * order; each next page starts strictly after the last key of the previous one.
 */
export async function* keysetPages(
  range: KeyRange,
  pageSize: number,
  fetch: (range: KeyRange, afterFrom: boolean) => Promise<ObjectMeta[]> | ObjectMeta[],
): AsyncGenerator<ObjectMeta[]> {
  if (!(pageSize >= 1)) throw new Error(`scan page size must be at least 1, got ${pageSize}`);
  let from = range.from;
  let after = false;
  for (;;) {
    const rows = await fetch({ from, to: range.to }, after);
    if (rows.length === 0) return;
    yield rows;
    if (rows.length < pageSize) return;
    const last = rows[rows.length - 1]!;
    from = { objectId: last.objectId, version: last.version };
    after = true;
  }
}
