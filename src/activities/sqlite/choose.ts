import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../shared/constants.js';
import { backupInvalid, listBackups, verifyBackupDigest, type BackupManifest } from './backup-files.js';
import type { SqliteDeps } from './deps.js';
import { heartbeating } from './heartbeat.js';
import { loadSqliteTarget, trustedWorkerKeys, type TargetRef } from './target.js';

export interface ChosenBackup {
  file: string;
  createdAt: string;
  rawBytes: number;
  rawSha256: string;
  compressedSha256: string;
  rows: Record<string, number | null>;
  counts: BackupManifest['counts'];
  schemaDigest: string;
}

export interface BackupChoice {
  chosen: ChosenBackup;
  /** newer backups passed over, and why (no manifest, untrusted signature, digest mismatch, …) */
  skipped: Array<{ file: string; reason: string }>;
}

export const createSqliteChooseActivities = (deps: SqliteDeps) => ({
  /**
   * The newest verified backup (seed §2.4 step 3 "find latest backup", but only one whose signed manifest holds
   * and whose bytes match it), or the named one, which must pass the same checks. Read-only.
   */
  async chooseBackup(ref: TargetRef & { backup?: string; before?: string }): Promise<BackupChoice> {
    const t = await loadSqliteTarget(deps.environmentsDir, ref, deps.runner);
    const all = await listBackups(t.backupsDir, t.prefix, await trustedWorkerKeys(t, deps.signingKey.publicKey));
    const skipped: BackupChoice['skipped'] = [];
    const candidates = ref.backup ? all.filter((b) => b.file === ref.backup) : all;
    if (ref.backup && candidates.length === 0)
      throw ApplicationFailure.nonRetryable(
        `backup ${ref.backup} is not in ${t.backupsDir} (see runbook sqlite backups --env ${ref.environment} --target ${ref.target})`,
        ErrorType.InvalidInput,
      );
    for (const b of candidates) {
      if (ref.before && b.manifest && b.manifest.createdAt > ref.before) continue;
      if (b.problem) {
        if (ref.backup) throw backupInvalid(`${b.file}: ${b.problem}`);
        skipped.push({ file: b.file, reason: b.problem });
        continue;
      }
      try {
        await heartbeating(verifyBackupDigest(b));
      } catch (err) {
        if (ref.backup) throw err;
        skipped.push({ file: b.file, reason: (err as Error).message.replace(`${b.file}: `, '') });
        continue;
      }
      const m = b.manifest!;
      return {
        chosen: {
          file: b.file,
          createdAt: m.createdAt,
          rawBytes: m.raw.bytes,
          rawSha256: m.raw.sha256,
          compressedSha256: m.compressed.sha256,
          rows: m.rows,
          counts: m.counts,
          schemaDigest: m.schemaDigest,
        },
        skipped,
      };
    }
    throw backupInvalid(
      `no verified backup of ${t.db} in ${t.backupsDir}${skipped.length ? ` (skipped: ${skipped.map((s) => `${s.file}: ${s.reason}`).join('; ')})` : ''}`,
    );
  },
});
