import { ActivityFailure, ApplicationFailure, workflowInfo } from '@temporalio/workflow';
import type { SqliteActivities } from '../activities/sqlite/index.js';
import { formatBytes } from '../shared/bytes.js';
import { ErrorType } from '../shared/constants.js';
import { parseRunbookInput, tightenApproval } from '../shared/input.js';
import { sqliteMilestoneRollbackInputSchema, type SqliteMilestoneRollbackInput } from '../shared/schemas.js';
import type { PlanChange, RunbookResult } from '../shared/types.js';
import { runbookActivities } from './engine/activity-options.js';
import { Runbook } from './engine/runbook.js';
import { monitorWindow } from './sqlite/monitor.js';
import { backupNameFor, runTag } from './sqlite/names.js';
import { restoreBackupInPlace } from './sqlite/undo.js';

const acts = runbookActivities<SqliteActivities>('quick');
const long = runbookActivities<SqliteActivities>('long');
const verify = runbookActivities<SqliteActivities>('verify');
const undo = runbookActivities<SqliteActivities>('undo');

export const SQLITE_MILESTONE_STEPS = [
  'load environment',
  'inspect',
  'seal plan',
  'approval',
  'stop services',
  'checkpoint',
  'pre-rollback backup',
  'digest tables',
  'drop milestone',
  'verify',
  'flags off',
  'start services',
  'health check',
  'monitor',
] as const;

type Digests = Record<string, { rows: number; sha256: string }>;

/** An activity's InvalidInput becomes the run's own (the engine keeps that type: nothing was changed). */
function asRunInput(err: unknown): never {
  const cause = err instanceof ActivityFailure ? err.cause : undefined;
  if (cause instanceof ApplicationFailure && cause.type === ErrorType.InvalidInput)
    throw ApplicationFailure.nonRetryable(cause.message, ErrorType.InvalidInput);
  throw err;
}

/**
 * SQLite milestone rollback (seed §2.2 memory system, §2.3 vector search), driven by the target's manifest:
 * inspect (what exists, what depends on it) → plan and approval → stop the milestone's services → checkpoint
 * (TRUNCATE) → pre-rollback backup (the undo's input) → digests → drop everything of the milestone in one
 * transaction (undo: restore the pre-rollback backup) → verify it is gone and the kept tables are unchanged →
 * flags off (undo: back) → start → health → monitor.
 */
export async function sqliteMilestoneRollback(rawInput: SqliteMilestoneRollbackInput): Promise<RunbookResult> {
  const input = parseRunbookInput(sqliteMilestoneRollbackInputSchema, rawInput);
  const ref = { environment: input.environment, target: input.target };
  const rb = new Runbook({
    runbook: 'sqlite-milestone-rollback',
    ...ref,
    requester: input.requester,
    reason: input.reason,
    dryRun: input.dryRun,
    steps: SQLITE_MILESTONE_STEPS,
    lockWait: input.lockWait,
  });
  const { workflowId, runId } = workflowInfo();
  const tag = runTag(workflowId, runId);
  const report: Record<string, unknown> = { milestone: input.milestone };

  return rb.run(
    async () => {
      const target = await rb.step('load environment', () => acts.describeSqliteTarget(ref), {
        summarize: (t) => `${t.database}; milestones: ${Object.keys(t.milestones).join(', ') || 'none'}`,
      });
      rb.usePolicy(tightenApproval(target.approval, input.approval), target.escalation);
      const now = await rb.step(
        'inspect',
        () => acts.inspectMilestone({ ...ref, milestone: input.milestone }).catch(asRunInput),
        {
          summarize: (i) =>
            `${i.present.tables.length + i.present.virtualTables.length} tables, ${i.present.indexes.length} indexes, ${i.present.triggers.length} triggers of "${i.milestone}" present; ${Object.entries(
              i.rows,
            )
              .map(([t, n]) => `${t}: ${n ?? 'absent'}`)
              .join(', ')}`,
        },
      );
      const services = now.services;
      const flagChanges = Object.entries(now.flags.desired).filter(([k, v]) => now.flags.current[k] !== v);
      const desiredFlags = Object.fromEntries(flagChanges);
      const previousFlags = Object.fromEntries(flagChanges.map(([k]) => [k, now.flags.current[k] ?? null]));
      const backupName = backupNameFor(
        target.prefix,
        new Date(),
        `pre${input.milestone.replace(/[^a-z0-9]/g, '')}`.slice(0, 10),
        runId,
      );
      const changes: PlanChange[] = [
        ...services.map((s) => ({ item: `service ${s}`, from: 'running', to: 'stopped, then started' })),
        { item: `${backupName}.db.gz`, from: null, to: 'pre-rollback backup (the undo restores it)' },
        ...now.present.triggers.map((n) => ({ item: `trigger ${n}`, from: 'present', to: null })),
        ...now.present.indexes.map((n) => ({ item: `index ${n}`, from: 'present', to: null })),
        ...[...now.present.virtualTables, ...now.present.tables].map((n) => ({
          item: `table ${n}`,
          from: `${now.rows[n] ?? 0} rows`,
          to: null,
        })),
        ...now.resets
          .filter((r) => r.rows !== null)
          .map((r) => ({
            item: `${r.table}.${Object.keys(r.set).join(', ')}`,
            from: `${r.rows} rows as they are`,
            to: Object.values(r.set)
              .map((v) => (v === null ? 'NULL' : String(v)))
              .join(', '),
          })),
        ...flagChanges.map(([k, v]) => ({ item: `flag ${k}`, from: now.flags.current[k] ?? null, to: v })),
      ];
      await rb.approval({
        summary: `roll back milestone "${input.milestone}" on ${input.environment}/${input.target}: stop ${services.join(', ') || 'no services'}, back up, drop ${now.present.tables.length + now.present.virtualTables.length} tables, ${now.present.indexes.length} indexes, ${now.present.triggers.length} triggers in one transaction${now.resets.length ? `, reset ${now.resets.map((r) => r.table).join(', ')}` : ''}${flagChanges.length ? `, ${flagChanges.length} flags off` : ''}; ${now.keepTables.join(', ')} must stay unchanged`,
        changes,
        details: {
          milestone: input.milestone,
          description: now.description,
          statements: now.statements,
          absent: now.absent,
          keepTables: now.keepTables,
          flagStore: now.flags.store,
          backup: `${backupName}.db.gz`,
          reason: input.reason,
        },
      });

      await rb.step('stop services', () => acts.stopSqliteServices({ ...ref, services }), {
        summarize: (s) => s.services.map((x) => `${x.name} stopped`).join(', ') || 'no services',
        undoBefore: () => undo.startSqliteServices({ ...ref, services }),
      });
      await rb.step('checkpoint', () => acts.checkpointDatabase({ ...ref, mode: 'TRUNCATE' }), {
        summarize: (c) => `TRUNCATE: ${c.checkpointed}/${c.log} WAL frames${c.busy ? ' (busy!)' : ''}`,
      });
      const backupRef = { ...ref, name: backupName };
      const backup = await rb.step(
        'pre-rollback backup',
        async () => {
          await long.copyDatabase(backupRef);
          await long.compressBackup(backupRef);
          await long.verifyBackup(backupRef);
          return acts.publishBackup({ ...backupRef, workflowId, runId });
        },
        {
          summarize: (m) => `${m.file} (${formatBytes(m.compressed.bytes)}, ${m.counts.tables} tables), verified`,
          undoBefore: () => undo.discardBackupWork(backupRef),
        },
      );
      report.backup = backup.file;
      const before = await rb.step('digest tables', () => long.digestSqliteTables(ref), {
        summarize: (d) => `${Object.keys(d.tables).length} tables, schema ${d.schemaDigest.slice(0, 12)}…`,
      });
      const keep: Digests = Object.fromEntries(now.keepTables.map((k) => [k, before.tables[k]!]));
      report.before = before;
      await rb.step(
        'drop milestone',
        () => acts.dropMilestone({ ...ref, milestone: input.milestone, statements: now.statements }),
        {
          summarize: (r) =>
            r.changes.length
              ? `${now.statements.length} statements in one transaction, committed`
              : 'already dropped (retry)',
          // whatever happened to the file, the pre-rollback backup puts it back (services stopped meanwhile)
          undoBefore: () => restoreBackupInPlace(ref, services, backup.file, `undo-${tag}`),
        },
      );
      const after = await rb.step(
        'verify',
        () => long.verifyMilestoneGone({ ...ref, milestone: input.milestone, before: keep }),
        {
          summarize: (v) =>
            `milestone gone; ${Object.keys(v.kept).length} kept tables unchanged; integrity ${v.integrity}; ${v.tables} tables left`,
        },
      );
      report.after = after.kept;
      if (flagChanges.length) {
        await rb.step(
          'flags off',
          () => acts.writeSqliteFlags({ ...ref, values: desiredFlags, expectCurrent: previousFlags }),
          {
            summarize: (r) => `${flagChanges.map(([k, v]) => `${k}=${v}`).join(' ')}${r.changed ? '' : ' (already)'}`,
            // the services read the flags when they start: the undo only writes them back
            undoBefore: () => undo.writeSqliteFlags({ ...ref, values: previousFlags, onlyIfCurrent: desiredFlags }),
          },
        );
        report.flags = { before: previousFlags, after: desiredFlags };
      } else rb.skip('flags off', `milestone "${input.milestone}" has no flags to turn off`);
      await rb.step('start services', () => acts.startSqliteServices({ ...ref, services }), {
        summarize: (s) => s.services.map((x) => `${x.name}: ${x.detail}`).join(', ') || 'no services',
      });
      await rb.step('health check', () => verify.checkSqliteHealth(ref), {
        summarize: (h) => [h.health ?? 'no health check', ...h.smoke].join('; '),
      });
      const m = target.monitor;
      await rb.step('monitor', () => monitorWindow(ref, m), {
        summarize: (r) => `${r.looks} looks over ${m.window}: ${r.errors} error lines, ${r.unhealthyLooks} unhealthy`,
      });
    },
    () => report,
  );
}
