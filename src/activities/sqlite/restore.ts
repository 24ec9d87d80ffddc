import { readFile, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { writeFileAtomically } from '../files.js';
import { backupInvalid, gunzipFile } from './backup-files.js';
import type { ChosenBackup } from './choose.js';
import type { SqliteDeps } from './deps.js';
import { installDatabase } from './forensics.js';
import { heartbeating } from './heartbeat.js';
import { loadSqliteTarget, requireSpace, type SqliteTarget, type TargetRef } from './target.js';
import { validateDatabase, type ValidationReport } from './validation.js';

// Restoring a backup into the live database's place (seed §2.4 step 3, §3.3): decompress beside the database,
// check the bytes against the signed manifest and the file against the checklist, then one atomic rename. The
// database is never half-written in place: until the rename the old file is there, after it the whole new one.

const stagedPath = (t: SqliteTarget, tag: string) => join(dirname(t.db), `.${basename(t.db)}.restore-${tag}`);
const stagedMarker = (t: SqliteTarget, tag: string) => `${stagedPath(t, tag)}.json`;

export interface StagedRestore {
  staged: string;
  rawSha256: string;
  bytes: number;
  validation: ValidationReport;
}

export const createSqliteRestoreActivities = (deps: SqliteDeps) => {
  const load = (ref: TargetRef) => loadSqliteTarget(deps.environmentsDir, ref, deps.runner);

  return {
    /**
     * Decompresses `backup` beside the database (space checked first, on the database's filesystem), checks its
     * sha256 against the manifest and validates it (full integrity, FK, core tables, indexes). Idempotent per tag.
     */
    async stageRestore(ref: TargetRef & { backup: ChosenBackup; tag: string }): Promise<StagedRestore> {
      const t = await load(ref);
      const staged = stagedPath(t, ref.tag);
      const previous = await readFile(stagedMarker(t, ref.tag), 'utf8').then(
        (s) => JSON.parse(s) as StagedRestore,
        () => undefined,
      );
      if (previous && (await stat(staged).catch(() => undefined))?.size === previous.bytes) return previous;
      await requireSpace(dirname(t.db), ref.backup.rawBytes, `restore of ${ref.backup.file}`);
      const back = await heartbeating(gunzipFile(join(t.backupsDir, ref.backup.file), staged));
      if (back.gzSha256 !== ref.backup.compressedSha256 || back.rawSha256 !== ref.backup.rawSha256) {
        await unlink(staged).catch(() => {});
        throw backupInvalid(
          `${ref.backup.file}: its bytes changed since it was chosen (sha256 differs from the manifest)`,
        );
      }
      const validation = await heartbeating(validateDatabase(staged, t.config, { integrity: 'full' }));
      for (const f of [`${staged}-wal`, `${staged}-shm`]) await unlink(f).catch(() => {});
      if (!validation.ok) {
        await unlink(staged).catch(() => {});
        throw backupInvalid(`${ref.backup.file} fails validation: ${validation.problems.join('; ')}`);
      }
      const result = { staged, rawSha256: back.rawSha256, bytes: back.rawBytes, validation };
      await writeFileAtomically(stagedMarker(t, ref.tag), JSON.stringify(result));
      return result;
    },

    /** Puts the staged file in place of the database (old wal/shm removed first; one rename). Idempotent; heartbeats. */
    async installRestore(ref: TargetRef & { tag: string; rawSha256: string }): Promise<{ state: string }> {
      const t = await load(ref);
      const state = await heartbeating(installDatabase(t.db, stagedPath(t, ref.tag), ref.rawSha256));
      await unlink(stagedMarker(t, ref.tag)).catch(() => {});
      deps.log.warn({ target: `${ref.environment}/${ref.target}`, state }, 'database replaced by a restore');
      return { state };
    },

    /** Removes a staged file that was not installed (cleanup on failure, abort, cancel). */
    async discardStagedRestore(ref: TargetRef & { tag: string }): Promise<void> {
      const t = await load(ref);
      for (const f of [stagedPath(t, ref.tag), stagedMarker(t, ref.tag)]) await unlink(f).catch(() => {});
    },
  };
};
