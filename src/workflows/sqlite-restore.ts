import type { SqliteActivities } from '../activities/sqlite/index.js';
import type { ValidationReport } from '../activities/sqlite/validation.js';
import { formatBytes } from '../shared/bytes.js';
import { formatDuration } from '../shared/duration.js';
import { parseRunbookInput } from '../shared/input.js';
import { sqliteRestoreInputSchema, type SqliteRestoreInput } from '../shared/schemas.js';
import type { RunbookResult } from '../shared/types.js';
import { runbookActivities } from './engine/activity-options.js';
import { RETURN_TO_SERVICE_STEPS, recoveryRun } from './sqlite/recovery.js';

const acts = runbookActivities<SqliteActivities>('quick');
const long = runbookActivities<SqliteActivities>('long');
const undo = runbookActivities<SqliteActivities>('longUndo');

export const SQLITE_RESTORE_STEPS = [
  'load environment',
  'inspect',
  'choose backup',
  'check space',
  'seal plan',
  'approval',
  'stage restore',
  'stop services',
  'forensic copy',
  'assess',
  'install',
  ...RETURN_TO_SERVICE_STEPS,
] as const;

/**
 * SQLite restore / emergency production rollback (seed §2.4, §3.3):
 *
 * load environment → inspect (files, space, services) → choose the newest verified backup (or the named one; newer
 * ones that fail their signed manifest, digest or size are skipped, with reasons, in the plan) → check space (the
 * staged file and the forensic copy) → plan + approval (the plan names the backup, its time — every write after it
 * is lost from the live database —, the services and the forensic directory) → stage the restore beside the
 * database while the services still run (decompress, digest against the manifest, full validation; undo: discard
 * it), so a backup that fails its own check stops the run before anything is touched and the downtime is only what
 * follows → stop services (undo: start them) → forensic copy of db + wal + shm as found → assess (quick_check, or
 * integrity_check with `integrityCheck`: CRITICAL when it fails, HIGH otherwise) → install by one rename (undo,
 * registered before it acts: put the forensic copy back, byte-identical) → validate the live database (integrity,
 * FK, core tables, indexes, smoke SQL) → start services (undo: stop them) → health and smoke → monitoring window
 * (durable timers; escalation past 1.5 × the window) → RTO per phase against the target.
 *
 * On failure, rejection, abort or cancel the undos run in reverse: stop the services, put the forensic copy back
 * (the ORIGINAL database, wal and shm as found), start the services again, discard the staged file.
 *
 * WAL recovery (seed §2.4 step 4) is deliberately NOT applied to the restored file. A WAL belongs to the database
 * file it was written for: its frames are page images of THAT file, and SQLite has no way to tell that a WAL
 * next to a database came from another one — a foreign WAL with a valid header would be replayed over the
 * restored pages and corrupt them, and a "checkpoint" of it can only ever apply it whole. So the old -wal and -shm
 * are copied into the forensic copy together with the old database (they are one consistent state: that copy
 * opens with every transaction committed before the failure), removed before the restored file is renamed into
 * place, and never opened against it. Transactions after the backup are recovered, when they must be, from the
 * forensic copy by a person (seed §6: level 3, database specialist) — the plan says they are lost from the live
 * database, not that they are gone.
 */
export async function sqliteRestore(rawInput: SqliteRestoreInput): Promise<RunbookResult> {
  const input = parseRunbookInput(sqliteRestoreInputSchema, rawInput);
  const { rb, r, ref } = recoveryRun('sqlite-restore', input, SQLITE_RESTORE_STEPS, 'install');
  let choice: Awaited<ReturnType<SqliteActivities['chooseBackup']>> | undefined;
  let assessment: ValidationReport | undefined;

  return rb.run(
    async () => {
      const target = await r.loadEnvironment();
      const { inspection, services } = await r.inspect();
      choice = await r.step('choose backup', () => acts.chooseBackup({ ...ref, backup: input.backup }), {
        summarize: (c) =>
          `${c.chosen.file} (${c.chosen.createdAt}, ${formatBytes(c.chosen.rawBytes)})${c.skipped.length ? `; skipped ${c.skipped.length} newer: ${c.skipped.map((s) => `${s.file}: ${s.reason}`).join('; ')}` : ''}`,
      });
      const backup = choice.chosen;
      await r.checkSpace(backup.rawBytes, `restore of ${backup.file}`);

      const lost = formatDuration(Math.max(0, Date.now() - Date.parse(backup.createdAt)));
      await r.approval({
        summary:
          `restore ${target.database} from ${backup.file} taken ${backup.createdAt}: every write after that time ` +
          `(${lost} of data so far) is lost from the live database and kept only in the forensic copy ` +
          `${r.forensicDir}; ${r.planSummaryTail('restore')}`,
        changes: [
          {
            item: target.database,
            from: inspection.exists
              ? `current database (${formatBytes(inspection.bytes)}, WAL ${formatBytes(inspection.walBytes)})`
              : 'missing',
            to: `${backup.file} (taken ${backup.createdAt})`,
          },
          ...r.planChanges(services, 'restore'),
        ],
        details: {
          backup: { file: backup.file, createdAt: backup.createdAt, rows: backup.rows, counts: backup.counts },
          skipped: choice.skipped,
          dataLossSince: backup.createdAt,
          wal: 'the current WAL goes into the forensic copy with its database; it is never applied to the restored file',
          integrityCheck: input.integrityCheck ? 'full' : 'quick',
          ...r.planDetails(),
          reason: input.reason,
        },
      });

      const stageRef = { ...ref, tag: r.tag };
      const staged = await r.step('stage restore', () => long.stageRestore({ ...stageRef, backup }), {
        summarize: (s) =>
          `${formatBytes(s.bytes)} sha256 ${s.rawSha256.slice(0, 12)}… as in the manifest; ${s.validation.tables} tables, ${s.validation.indexes} indexes, integrity ${s.validation.integrity}`,
        undoBefore: () => undo.discardStagedRestore(stageRef),
      });
      await r.stopServices();
      await r.forensicCopy();
      if (inspection.exists) {
        assessment = await r.step(
          'assess',
          () => long.validateLiveDatabase({ ...ref, integrity: input.integrityCheck ? 'full' : 'quick', sql: false }),
          {
            summarize: (a) =>
              `${a.ok ? 'HIGH' : 'CRITICAL'}: ${a.ok ? `integrity ${a.integrity}` : a.problems.join('; ')}`,
          },
        );
        r.setSeverity(assessment.ok ? 'HIGH' : 'CRITICAL');
      } else {
        rb.skip('assess', 'CRITICAL: there is no database file');
        r.setSeverity('CRITICAL');
      }
      await r.step('install', () => long.installRestore({ ...stageRef, rawSha256: staged.rawSha256 }), {
        summarize: (i) =>
          `${i.state}: ${target.database} is ${backup.file}; the old wal and shm are only in the forensic copy`,
        undoBefore: () => undo.putBackSqliteForensicCopy(stageRef),
      });
      r.dataLoss =
        `every write after ${backup.createdAt} (${formatDuration(Math.max(0, Date.now() - Date.parse(backup.createdAt)))} ` +
        `of data) is not in the restored database; the forensic copy ${r.forensicDir} keeps the database as it was`;
      await r.returnToService({ smokeSql: true });
    },
    () => {
      const install = rb.state.steps.find((s) => s.name === 'install');
      if (install?.status === 'compensated') r.dataLoss = 'none: the original database was put back';
      return {
        ...r.facts(),
        backup: choice && {
          file: choice.chosen.file,
          createdAt: choice.chosen.createdAt,
          rawSha256: choice.chosen.rawSha256,
        },
        skipped: choice?.skipped ?? [],
        assessment: assessment && { ok: assessment.ok, integrity: assessment.integrity, problems: assessment.problems },
      };
    },
  );
}
