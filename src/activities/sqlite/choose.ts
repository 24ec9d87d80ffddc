import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../shared/constants.js';
import {
  backupInvalid,
  SQLITE_BACKUPS,
  verifyBackupDigest,
  type BackupKind,
  type BackupManifest,
  type ListedBackup,
  type SignedManifest,
} from './backup-files.js';
import type { SqliteDeps } from './deps.js';
import { heartbeating } from './heartbeat.js';
import { listTargetBackups, loadSqliteTarget, type TargetRef } from './target.js';

// Which backup a restore or a drill uses: the newest one whose signed manifest holds and whose bytes match it.
// Every newer backup passed over is reported with the reason, so a run's record says why it took an older one.

/** The backup a run restores, as its signed manifest describes it (digests checked against the file). */
export interface ChosenBackup {
  file: string;
  createdAt: string;
  /** compressed */
  bytes: number;
  /** sha256 of the compressed file */
  sha256: string;
  compressedSha256: string;
  rawBytes: number;
  rawSha256: string;
  tables: number;
  indexes: number;
  counts: BackupManifest['counts'];
  /** core table row counts at the time of the backup */
  rows: Record<string, number | null>;
  schemaDigest: string;
  method: BackupManifest['method'];
  /** the run that took it */
  workflowId?: string;
}

export interface SkippedBackup {
  file: string;
  reason: string;
}

export interface BackupChoice {
  chosen: ChosenBackup;
  /** newer backups that were not usable, newest first, each with why */
  skipped: SkippedBackup[];
}

const fileVanished = (err: unknown) => (err as NodeJS.ErrnoException)?.code === 'ENOENT';
const isBackupInvalid = (err: unknown) => err instanceof ApplicationFailure && err.type === ErrorType.BackupInvalid;

/**
 * Newest first: the first backup whose manifest is signed by a trusted key, names it, has its size, and whose
 * sha256 matches it. With `wanted`, only that backup, and its problem is the run's error (no fallback to another).
 * With `before` (ISO time), only backups taken before it.
 */
export async function chooseVerifiedBackup<M extends SignedManifest = BackupManifest>(
  backups: ListedBackup<M>[],
  wanted?: string,
  before?: string,
  kind: BackupKind<M> = SQLITE_BACKUPS as unknown as BackupKind<M>,
): Promise<{ chosen: ListedBackup<M> & { manifest: M }; skipped: SkippedBackup[] }> {
  let candidates = wanted ? backups.filter((b) => b.file === wanted) : backups;
  if (wanted && candidates.length === 0)
    throw ApplicationFailure.nonRetryable(`backup: no backup named ${wanted}`, ErrorType.InvalidInput);
  if (before)
    candidates = candidates.filter((b) => !b.manifest || Date.parse(b.manifest.createdAt) < Date.parse(before));
  const skipped: SkippedBackup[] = [];
  for (const b of candidates) {
    const reason =
      b.problem ??
      (await verifyBackupDigest(b, kind).then(
        () => undefined,
        (err: Error) => {
          if (!isBackupInvalid(err) && !fileVanished(err)) throw err;
          return err.message.startsWith(`${b.file}: `) ? err.message.slice(b.file.length + 2) : err.message;
        },
      ));
    if (reason === undefined && b.manifest) return { chosen: { ...b, manifest: b.manifest }, skipped };
    if (wanted) throw backupInvalid(`${b.file}: ${reason}`);
    skipped.push({ file: b.file, reason: reason ?? 'no manifest' });
  }
  throw backupInvalid(
    skipped.length === 0
      ? 'no backup at all'
      : `none verified (${skipped.map((s) => `${s.file}: ${s.reason}`).join('; ')})`,
  );
}

/**
 * chooseVerifiedBackup of the backups in `dir` (heartbeating while digests are checked); when none will do, the
 * error names the prefix and the directory.
 */
export function chooseBackupIn<M extends SignedManifest = BackupManifest>(
  backups: ListedBackup<M>[],
  where: { prefix: string; dir: string },
  o: { wanted?: string; before?: string; kind?: BackupKind<M> } = {},
): Promise<{ chosen: ListedBackup<M> & { manifest: M }; skipped: SkippedBackup[] }> {
  return heartbeating(chooseVerifiedBackup(backups, o.wanted, o.before, o.kind)).catch((err: unknown) => {
    if (!isBackupInvalid(err)) throw err;
    throw backupInvalid(`no verified backup of ${where.prefix} in ${where.dir}: ${(err as Error).message}`);
  });
}

export const createSqliteChooseActivities = (deps: SqliteDeps) => ({
  /** Read-only: picks the backup to restore (input.backup, or the newest verified one) and says what it skipped. */
  async chooseBackup(ref: TargetRef & { backup?: string; before?: string }): Promise<BackupChoice> {
    const t = await loadSqliteTarget(deps.environmentsDir, ref, deps.runner);
    const all = await listTargetBackups(t, deps.signingKey.publicKey);
    const where = { prefix: t.prefix, dir: t.backupsDir };
    const { chosen, skipped } = await chooseBackupIn(all, where, { wanted: ref.backup, before: ref.before });
    const m = chosen.manifest;
    return {
      chosen: {
        file: chosen.file,
        createdAt: m.createdAt,
        bytes: m.compressed.bytes,
        sha256: m.compressed.sha256,
        compressedSha256: m.compressed.sha256,
        rawBytes: m.raw.bytes,
        rawSha256: m.raw.sha256,
        tables: m.counts.tables,
        indexes: m.counts.indexes,
        counts: m.counts,
        rows: m.rows,
        schemaDigest: m.schemaDigest,
        method: m.method,
        workflowId: m.workflowId,
      },
      skipped,
    };
  },
});
