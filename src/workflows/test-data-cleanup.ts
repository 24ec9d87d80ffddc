import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import type { CleanupActivities, Identification } from '../activities/cleanup/index.js';
import { formatBytes } from '../shared/bytes.js';
import { ErrorType } from '../shared/constants.js';
import { parseRunbookInput, tightenApproval, tightenLimit } from '../shared/input.js';
import { testDataCleanupInputSchema, type TestDataCleanupInput } from '../shared/schemas.js';
import type { RunbookResult } from '../shared/types.js';
import { runbookActivities } from './engine/activity-options.js';
import { Runbook } from './engine/runbook.js';

const acts = runbookActivities<CleanupActivities>('quick');
const undo = runbookActivities<CleanupActivities>('undo');

export const TEST_DATA_CLEANUP_STEPS = [
  'load environment',
  'identify',
  'seal plan',
  'approval',
  'export rows',
  'delete in one transaction',
  'verify',
] as const;

/** A rolled-back delete keeps its type as the run's own: nothing was deleted, the set changed under the run. */
function keepRolledBack(err: unknown): never {
  const cause = err instanceof ActivityFailure ? err.cause : undefined;
  if (cause instanceof ApplicationFailure && cause.type === ErrorType.CleanupRolledBack)
    throw ApplicationFailure.nonRetryable(cause.message, ErrorType.CleanupRolledBack);
  throw err;
}

const listCounts = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([t, n]) => `${n} ${t}`)
    .join(', ');

/**
 * Test-data cleanup (seed: feature-flag-dual-write-rollback.md, scenario 3), driven by `targets.<t>.cleanup`:
 * identify (each table's predicates, then the closure over the relations; counts, the exact id set in a private
 * file named by its digest, a sample, the orphan baseline) → approval of exactly that set → export every row to
 * delete (row_to_json, a file named by its digest: the undo's input) → ONE transaction: the approved rows locked
 * and equal to the export, the selection again equal to the approved set, delete children first by the approved
 * keys, counts deleted = approved, no orphans created; COMMIT only then, otherwise ROLLBACK and CleanupRolledBack
 * → verify after commit (nothing matches, orphans at their baseline). Undo (registered before the delete, acts
 * only when this run's transaction committed): re-insert the exported rows parents first, ON CONFLICT DO NOTHING.
 * A dry run identifies and writes nothing (no id file: the plan holds the digest, counts and sample only).
 */
export async function testDataCleanup(rawInput: TestDataCleanupInput): Promise<RunbookResult> {
  const input = parseRunbookInput(testDataCleanupInputSchema, rawInput);
  const ref = { environment: input.environment, target: input.target };
  const rb = new Runbook({
    runbook: 'test-data-cleanup',
    ...ref,
    requester: input.requester,
    reason: input.reason,
    dryRun: input.dryRun,
    steps: TEST_DATA_CLEANUP_STEPS,
    lockWait: input.lockWait,
  });
  const report: Record<string, unknown> = {};

  return rb.run(
    async () => {
      const target = await rb.step('load environment', () => acts.describeCleanupTarget(ref), {
        summarize: (t) => `${t.order.length} tables in ${t.urlEnv}; delete order ${t.order.join(' → ')}`,
      });
      rb.usePolicy(tightenApproval(target.approval, input.approval), target.escalation);
      const maxRows = tightenLimit('maxRows', target.maxRows, input.maxRows);
      const found: Identification = await rb.step(
        'identify',
        () => acts.identifyTestData({ ...ref, maxRows, dryRun: input.dryRun }),
        {
          summarize: (i) =>
            `${i.total} rows: ${listCounts(i.counts)}; ids sha256 ${i.idsDigest.slice(0, 12)}…${i.written ? '' : input.dryRun ? ' (dry run: not written)' : ' (nothing to write)'}`,
        },
      );
      report.identified = { idsDigest: found.idsDigest, counts: found.counts, asOf: found.asOf };
      if (found.total === 0) {
        // nothing to approve: say so, change nothing
        await rb.seal({
          summary: `no test data matches on ${input.environment}/${input.target}: nothing to delete`,
          changes: [],
          details: { selection: target.selection, asOf: found.asOf, orphans: found.orphans },
        });
        for (const step of ['approval', 'export rows', 'delete in one transaction', 'verify'] as const)
          rb.skip(step, 'nothing selected');
        return;
      }
      await rb.approval(
        {
          summary:
            `delete ${found.total} rows of test data on ${input.environment}/${input.target} in one transaction ` +
            `(${listCounts(found.counts)}), children first: ${target.order.join(' → ')}; exactly the id set ` +
            `sha256 ${found.idsDigest}; rows exported first, re-inserted if anything fails after the commit`,
          changes: target.order
            .filter((t) => found.counts[t])
            .map((t) => ({ item: t, from: `${found.counts[t]} rows`, to: 'deleted (exported first)' })),
          details: {
            idsDigest: found.idsDigest,
            asOf: found.asOf,
            counts: found.counts,
            sample: found.sample,
            selection: target.selection,
            relations: target.relations,
            order: target.order,
            orphansBefore: found.orphans,
            workDir: target.workDir,
            reason: input.reason,
          },
        },
        { childInput: rawInput },
      );

      const exported = await rb.step('export rows', () => acts.exportTestData({ ...ref, idsDigest: found.idsDigest }), {
        summarize: (e) => `${formatBytes(e.bytes)} export sha256 ${e.exportDigest.slice(0, 12)}…`,
      });
      report.exportDigest = exported.exportDigest;
      const deleted = await rb.step(
        'delete in one transaction',
        () =>
          acts
            .deleteTestData({ ...ref, idsDigest: found.idsDigest, exportDigest: exported.exportDigest })
            .catch(keepRolledBack),
        {
          summarize: (d) => `${d.state}: ${listCounts(d.deleted)}`,
          // registered before it acts; restores only when this run's transaction committed
          undoBefore: async () => {
            report.undo = await undo.restoreTestData({ ...ref, exportDigest: exported.exportDigest });
          },
        },
      );
      report.deleted = deleted.deleted;
      await rb.step(
        'verify',
        () => acts.verifyCleanup({ ...ref, idsDigest: found.idsDigest, orphans: found.orphans }),
        {
          summarize: (v) =>
            `no test rows left; orphans at baseline (${Object.entries(v.orphans)
              .map(([r, n]) => `${r}: ${n}`)
              .join(', ')})`,
        },
      );
    },
    () => report,
  );
}
