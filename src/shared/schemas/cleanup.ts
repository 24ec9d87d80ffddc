import { z } from 'zod';
import { boundedDuration, envVarNameSchema, sqlIdentifier } from './primitives.js';

// The environment section `targets.<t>.cleanup` (test-data cleanup, seed: feature-flag-dual-write-rollback.md
// scenario 3) and the runbook's input. The data set is configuration: tables, predicates, relations.

const isoTime = z.iso.datetime({ offset: true });

/**
 * One condition on a column. Values are always bound as parameters; the column is an identifier, quoted.
 * `like`/`ilike`: a pattern (`%Test Team%`); `equals`: a value; `after`/`before`: an instant (>= / <);
 * `within`: created in the last <duration> before identification (recorded as an instant in the plan).
 */
export const cleanupPredicateSchema = z.union([
  z.strictObject({ column: sqlIdentifier, like: z.string().min(1) }),
  z.strictObject({ column: sqlIdentifier, ilike: z.string().min(1) }),
  z.strictObject({ column: sqlIdentifier, equals: z.union([z.string(), z.number(), z.boolean()]) }),
  z.strictObject({ column: sqlIdentifier, after: isoTime }),
  z.strictObject({ column: sqlIdentifier, before: isoTime }),
  z.strictObject({ column: sqlIdentifier, within: boundedDuration({ min: '1s', max: '3650d' }).transform(String) }),
]);
export type CleanupPredicate = z.output<typeof cleanupPredicateSchema>;

const cleanupTableSchema = z.strictObject({
  /** the primary-key column: rows are approved, exported, deleted and re-inserted by it */
  key: sqlIdentifier.default('id'),
  /** a column shown beside the key in the plan's sample (e.g. name) */
  label: sqlIdentifier.optional(),
  /**
   * rows selected by the table's own predicates: (any of `any`, when given) AND (all of `all`); a table without
   * `where` has only the rows its relations select
   */
  where: z
    .strictObject({
      any: z.array(cleanupPredicateSchema).default([]),
      all: z.array(cleanupPredicateSchema).default([]),
    })
    .refine((w) => w.any.length + w.all.length > 0, { message: 'needs at least one predicate in any or all' })
    .optional(),
});
export type CleanupTableConfig = z.output<typeof cleanupTableSchema>;

/**
 * `table.column` references `references.referencedColumn`: rows of `table` whose column points at a selected row
 * are selected too (deleting the referenced row would orphan them), and `table` is deleted before `references`.
 * `selectReferenced`: the referenced rows of selected rows are selected as well (legacy teams through the
 * migration map of the selected vNext teams).
 */
const cleanupRelationSchema = z.strictObject({
  table: sqlIdentifier,
  column: sqlIdentifier,
  references: sqlIdentifier,
  /** default: the referenced table's key */
  referencedColumn: sqlIdentifier.optional(),
  selectReferenced: z.boolean().default(false),
});
export type CleanupRelation = z.output<typeof cleanupRelationSchema>;

/**
 * Tables in delete order: every table after the tables that reference it (children first). A cycle (including a
 * table referencing itself) has no such order: it is returned as the tables on it.
 */
export function cleanupDeleteOrder(
  tables: string[],
  relations: Array<{ table: string; references: string }>,
): { order: string[] } | { cycle: string[] } {
  const order: string[] = [];
  const left = new Set(tables);
  while (left.size > 0) {
    // a table is deleted once no table still left references it
    const next = [...left].filter((t) => !relations.some((r) => r.references === t && left.has(r.table)));
    if (next.length === 0) return { cycle: [...left].sort() };
    for (const t of next) {
      order.push(t);
      left.delete(t);
    }
  }
  return { order };
}

export const cleanupTargetSchema = z
  .strictObject({
    /** the worker's environment variable holding the connection string (never the URL itself) */
    urlEnv: envVarNameSchema,
    /** id sets, exports and commit records of the runs, on the worker's host (private files) */
    workDir: z.string().min(1),
    /** every table a run may delete from, by name (schema.table allowed) */
    tables: z.record(sqlIdentifier, cleanupTableSchema),
    relations: z.array(cleanupRelationSchema).default([]),
    /** a selection larger than this is refused (a predicate that matches real data by mistake) */
    maxRows: z.number().int().min(1).max(1_000_000).default(10_000),
    /** rows per table shown in the plan */
    sample: z.number().int().min(0).max(50).default(5),
  })
  .superRefine((c, ctx) => {
    const names = Object.keys(c.tables);
    c.relations.forEach((r, i) => {
      for (const field of ['table', 'references'] as const) {
        if (!c.tables[r[field]])
          ctx.addIssue({
            code: 'custom',
            path: ['relations', i, field],
            message: `"${r[field]}" is not one of the tables (${names.join(', ')})`,
          });
      }
    });
    if (!names.some((n) => c.tables[n]!.where))
      ctx.addIssue({ code: 'custom', path: ['tables'], message: 'no table has a where: nothing would be selected' });
    const order = cleanupDeleteOrder(
      names,
      c.relations.filter((r) => c.tables[r.table] && c.tables[r.references]),
    );
    if ('cycle' in order)
      ctx.addIssue({
        code: 'custom',
        path: ['relations'],
        message: `form a cycle through ${order.cycle.join(', ')}: there is no order that deletes children first`,
      });
  });
export type CleanupTargetConfig = z.output<typeof cleanupTargetSchema>;
