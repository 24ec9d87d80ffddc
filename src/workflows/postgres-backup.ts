import { workflowInfo } from '@temporalio/workflow';
import type { PostgresActivities } from '../activities/postgres/index.js';
import { formatBytes } from '../shared/bytes.js';
import { parseRunbookInput, tightenApproval } from '../shared/input.js';
import { postgresBackupInputSchema, type PostgresBackupInput } from '../shared/schemas.js';
import type { RunbookResult } from '../shared/types.js';
import { runbookActivities } from './engine/activity-options.js';
import { Runbook } from './engine/runbook.js';
import { backupNameFor } from './sqlite/names.js';

const acts = runbookActivities<PostgresActivities>('quick');
const long = runbookActivities<PostgresActivities>('long');

export const POSTGRES_BACKUP_STEPS = [
  'load environment',
  'inspect database',
  'seal plan',
  'dump',
  'retention',
] as const;

/**
 * Postgres backup (seed scenario 4's backups): pg_dump in custom format of the target's database, with the rows
 * of every table counted in the same snapshot; the dump is read back by pg_restore --list, then a signed manifest
 * (digest, size, time, row counts) is written beside it — the manifest is what makes it a verified backup.
 * Retention after. No approval: it changes nothing the application reads, and it runs from a schedule.
 */
export async function postgresBackup(rawInput: PostgresBackupInput): Promise<RunbookResult> {
  const input = parseRunbookInput(postgresBackupInputSchema, rawInput);
  const ref = { environment: input.environment, target: input.target };
  const rb = new Runbook({
    runbook: 'postgres-backup',
    ...ref,
    requester: input.requester,
    reason: input.reason,
    dryRun: input.dryRun,
    steps: POSTGRES_BACKUP_STEPS,
    lockWait: input.lockWait,
  });
  const { workflowId, runId } = workflowInfo();
  let published: { file: string; bytes: number; sha256: string; rows: Record<string, number> } | undefined;
  let pruned: string[] = [];

  return rb.run(
    async () => {
      const target = await rb.step('load environment', () => acts.describePostgresTarget(ref), {
        summarize: (t) => `database ${t.database} → ${t.backupsDir} (retention ${t.retention})`,
      });
      rb.usePolicy(tightenApproval(target.approval, input.approval), target.escalation);
      const name = backupNameFor(target.prefix, new Date(), input.tag, runId);
      const now = await rb.step('inspect database', () => acts.inspectPostgresDatabase(ref), {
        summarize: (i) => `${formatBytes(i.bytes)}, ${i.tables} tables; ${i.backups.verified} verified backups`,
      });
      const wouldPrune = input.prune ? await acts.prunePostgresBackups({ ...ref, dryRun: true }) : { deleted: [] };
      await rb.seal({
        summary: `pg_dump ${target.database} (${formatBytes(now.bytes)}) to ${target.backupsDir}/${name}.dump with a signed manifest; ${
          input.prune
            ? `retention ${target.retention}: ${wouldPrune.deleted.length} old backups would go`
            : 'no retention'
        }`,
        changes: [
          { item: `${name}.dump`, from: null, to: 'verified backup' },
          ...wouldPrune.deleted.map((file) => ({ item: file, from: 'backup', to: null })),
        ],
        details: { name, database: target.database, retention: target.retention, reason: input.reason },
      });
      const m = await rb.step('dump', () => long.takePostgresBackup({ ...ref, name, workflowId, runId }), {
        summarize: (d) =>
          `${d.file}: ${formatBytes(d.dump.bytes)} sha256 ${d.dump.sha256.slice(0, 12)}…, ${d.tables} tables (signed manifest)`,
      });
      published = { file: m.file, bytes: m.dump.bytes, sha256: m.dump.sha256, rows: m.rows };
      if (input.prune) {
        const r = await rb.step('retention', () => acts.prunePostgresBackups(ref), {
          summarize: (p) => `${p.deleted.length} deleted (${formatBytes(p.freedBytes)}), ${p.kept} kept`,
        });
        pruned = r.deleted;
      } else rb.skip('retention', 'prune: false');
    },
    () => ({ backup: published, pruned }),
  );
}
