import { workflowInfo } from '@temporalio/workflow';
import type { SqliteActivities } from '../activities/sqlite/index.js';
import { parseRunbookInput, tightenApproval } from '../shared/input.js';
import { sqliteBackupInputSchema, type SqliteBackupInput } from '../shared/schemas.js';
import type { RunbookResult } from '../shared/types.js';
import { runbookActivities } from './engine/activity-options.js';
import { Runbook } from './engine/runbook.js';
import { formatBytes } from '../shared/bytes.js';
import { backupNameFor } from './sqlite/names.js';

const acts = runbookActivities<SqliteActivities>('quick');
const long = runbookActivities<SqliteActivities>('long');
const cleanup = runbookActivities<SqliteActivities>('undo');

export const SQLITE_BACKUP_STEPS = [
  'load environment',
  'inspect database',
  'seal plan',
  'checkpoint',
  'copy',
  'compress',
  'verify',
  'publish',
  'retention',
] as const;

/**
 * SQLite backup (seed §3.1 daily, §3.2 manual): checkpoint → online copy (backup API or VACUUM INTO, never the
 * live file) → gzip → verify (decompress, integrity_check, counts) → publish with a signed manifest → retention.
 * No approval: it changes nothing the application reads, and it runs from a schedule.
 */
export async function sqliteBackup(rawInput: SqliteBackupInput): Promise<RunbookResult> {
  const input = parseRunbookInput(sqliteBackupInputSchema, rawInput);
  const ref = { environment: input.environment, target: input.target };
  const rb = new Runbook({
    runbook: 'sqlite-backup',
    ...ref,
    requester: input.requester,
    reason: input.reason,
    dryRun: input.dryRun,
    steps: SQLITE_BACKUP_STEPS,
    lockWait: input.lockWait,
  });
  const { workflowId, runId } = workflowInfo();
  let published: { file: string; bytes: number; rawBytes: number; sha256: string } | undefined;
  let pruned: string[] = [];

  return rb.run(
    async () => {
      const target = await rb.step('load environment', () => acts.describeSqliteTarget(ref), {
        summarize: (t) => `${t.database} → ${t.backupsDir} (${t.method}, gzip -${t.compression})`,
      });
      rb.usePolicy(tightenApproval(target.approval, input.approval), target.escalation);
      const name = backupNameFor(target.prefix, new Date(), input.tag, runId);
      const now = await rb.step('inspect database', () => acts.inspectDatabase(ref), {
        summarize: (i) =>
          `${formatBytes(i.bytes)} + WAL ${formatBytes(i.walBytes)}; ${i.backups.verified} verified backups; ${formatBytes(i.backupsFreeBytes)} free for backups`,
      });
      const wouldPrune = input.prune
        ? await acts.pruneBackups({ ...ref, dryRun: true })
        : { deleted: [] as string[], freedBytes: 0 };
      await rb.seal({
        summary: `back up ${target.database} (${formatBytes(now.bytes)}) to ${target.backupsDir}/${name}.db.gz; verify; ${
          input.prune
            ? `retention ${target.retention}: ${wouldPrune.deleted.length} old backups would go`
            : 'no retention'
        }`,
        changes: [
          { item: `${name}.db.gz`, from: null, to: 'verified backup' },
          ...wouldPrune.deleted.map((file) => ({ item: file, from: 'backup', to: null })),
        ],
        details: {
          name,
          method: target.method,
          database: target.database,
          retention: target.retention,
          reason: input.reason,
        },
      });

      await rb.step('checkpoint', () => acts.checkpointDatabase({ ...ref, mode: 'PASSIVE' }), {
        summarize: (c) =>
          `${c.checkpointed}/${c.log} WAL frames checkpointed${c.busy ? ' (writers busy: the copy reads a snapshot anyway)' : ''}`,
      });
      const backupRef = { ...ref, name };
      await rb.step('copy', () => long.copyDatabase(backupRef), {
        summarize: (c) => `${c.method}: ${formatBytes(c.bytes)}, ${c.pageCount} pages`,
        // the unfinished backup's work files go when the run does not succeed
        undoBefore: () => cleanup.discardBackupWork(backupRef),
      });
      const gz = await rb.step('compress', () => long.compressBackup(backupRef), {
        summarize: (c) => `${formatBytes(c.rawBytes)} → ${formatBytes(c.gzBytes)}`,
      });
      await rb.step('verify', () => long.verifyBackup(backupRef), {
        summarize: (v) =>
          `integrity ok; ${v.counts.tables} tables, ${v.counts.indexes} indexes; ${v.foreignKeyViolations} FK violations`,
      });
      const manifest = await rb.step('publish', () => acts.publishBackup({ ...backupRef, workflowId, runId }), {
        summarize: (m) => `${m.file} sha256 ${m.compressed.sha256.slice(0, 12)}… (signed manifest)`,
      });
      published = { file: manifest.file, bytes: gz.gzBytes, rawBytes: gz.rawBytes, sha256: manifest.compressed.sha256 };
      if (input.prune) {
        const r = await rb.step('retention', () => acts.pruneBackups(ref), {
          summarize: (p) => `${p.deleted.length} deleted (${formatBytes(p.freedBytes)}), ${p.kept} kept`,
        });
        pruned = r.deleted;
      } else rb.skip('retention', 'prune: false');
    },
    () => ({ backup: published, pruned }),
  );
}
