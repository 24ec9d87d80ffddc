import type { KeyRange, ObjectMeta } from './types.js';

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
  if (parts.length > 2 || parts.some((p) => !IDENTIFIER.test(p))) throw new Error(`invalid ${what} "${name}": use letters, digits and _ (optionally schema.table)`);
  return parts.map((p) => `"${p}"`).join('.');
}

/**
 * WHERE clause over the (objectId, version) row value; `param(i)` renders a placeholder. With `afterFrom`
 * the lower bound is exclusive (keyset pagination continues strictly after the last key seen).
 */
export function rangeClause(range: KeyRange, idCol: string, versionCol: string, params: unknown[], param: (i: number) => string, collate = '', afterFrom = false): string {
  const parts: string[] = [];
  // each row-value bound comes with a redundant bound on the id alone: planners estimate and index those well
  if (range.from) {
    params.push(range.from.objectId, range.from.version);
    parts.push(`(${idCol}${collate}, ${versionCol}) ${afterFrom ? '>' : '>='} (${param(params.length - 1)}${collate}, ${param(params.length)})`);
    params.push(range.from.objectId);
    parts.push(`${idCol}${collate} >= ${param(params.length)}${collate}`);
  }
  if (range.to) {
    params.push(range.to.objectId, range.to.version);
    parts.push(`(${idCol}${collate}, ${versionCol}) < (${param(params.length - 1)}${collate}, ${param(params.length)})`);
    params.push(range.to.objectId);
    parts.push(`${idCol}${collate} <= ${param(params.length)}${collate}`);
  }
  return parts.length ? parts.join(' AND ') : 'TRUE';
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
