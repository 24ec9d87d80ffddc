import { z } from 'zod';
import { baseInput } from './inputs.js';
import { durationSchema, nameSchema } from './primitives.js';
import { BACKUP_FILE_PATTERN } from './sqlite.js';

// Inputs of the SQLite runbooks: they name a target and choices, never paths or data.

const backupFile = z
  .string()
  .regex(
    BACKUP_FILE_PATTERN,
    'must be a backup file name of the target (<prefix>_<YYYY-MM-DD_HH-MM-SS>.db.gz), no path',
  );

/** how long health and the error log are watched after the restart (at least the environment's monitor.window) */
const monitorWindow = durationSchema.transform(String).optional();

/** when the incident was detected (RTO starts there; default: when the run started) */
const detectedAt = z.iso.datetime({ offset: true }).optional();

/** What a backup run takes besides baseInput (SQLite's and Postgres's). */
export const backupRunInput = {
  /** a label in the file name, e.g. "manual" before a critical operation (seed §3.2) */
  tag: z
    .string()
    .regex(/^[a-z0-9]{1,16}$/, 'must be 1-16 lowercase letters or digits')
    .optional(),
  /** apply the retention policy after the backup (default true) */
  prune: z.boolean().default(true),
};

export const sqliteBackupInputSchema = z.strictObject({ ...baseInput, ...backupRunInput });
export type SqliteBackupInput = z.input<typeof sqliteBackupInputSchema>;

export const sqliteRestoreInputSchema = z.strictObject({
  ...baseInput,
  /** restore this backup instead of the newest verified one */
  backup: backupFile.optional(),
  /** a full integrity_check in the assessment (always a quick_check) */
  integrityCheck: z.boolean().default(false),
  monitorWindow,
  detectedAt,
});
export type SqliteRestoreInput = z.input<typeof sqliteRestoreInputSchema>;

export const sqliteFreshStartInputSchema = z.strictObject({
  ...baseInput,
  monitorWindow,
  detectedAt,
});
export type SqliteFreshStartInput = z.input<typeof sqliteFreshStartInputSchema>;

export const sqliteMilestoneRollbackInputSchema = z.strictObject({
  ...baseInput,
  /** a milestone of the target's sqlite.milestones */
  milestone: nameSchema,
});
export type SqliteMilestoneRollbackInput = z.input<typeof sqliteMilestoneRollbackInputSchema>;

export const SQLITE_RECOVERY_SCENARIOS = ['corruption', 'wal', 'disk-full'] as const;
export const sqliteRecoveryInputSchema = z.strictObject({
  ...baseInput,
  /** seed §4.1 database corruption, §4.2 WAL corruption, §4.3 disk space exhaustion */
  scenario: z.enum(SQLITE_RECOVERY_SCENARIOS),
  monitorWindow,
  detectedAt,
});
export type SqliteRecoveryInput = z.input<typeof sqliteRecoveryInputSchema>;

export const sqliteDrillInputSchema = z.strictObject({
  ...baseInput,
  /** drill with this backup instead of the newest verified one */
  backup: backupFile.optional(),
});
export type SqliteDrillInput = z.input<typeof sqliteDrillInputSchema>;
