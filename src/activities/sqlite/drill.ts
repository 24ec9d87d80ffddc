import { readFile, rm } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../shared/constants.js';
import { ensurePrivateDir, writeFileAtomically } from '../files.js';
import { backupInvalid, gunzipFile } from './backup-files.js';
import type { SqliteDeps } from './deps.js';
import { heartbeating } from './heartbeat.js';
import {
  companions,
  listTargetBackups,
  loadSqliteTarget,
  requireSpace,
  unsafePath,
  type SqliteTarget,
  type TargetRef,
} from './target.js';
import { rowCountProblems, validateDatabase } from './validation.js';

// The drill's activities (seed §5): a backup restored into a sandbox of its own, <drill.sandboxDir>/<run>/,
// validated there and removed. Nothing here opens, copies over or even reads the live database.

export interface SandboxRef extends TargetRef {
  /** the sandbox's name under drill.sandboxDir: the run's id */
  run: string;
}

export interface SandboxRestore {
  dir: string;
  database: string;
  backup: string;
  rawBytes: number;
  rawSha256: string;
  gzBytes: number;
}

/** The §5.2 checklist on the restored copy (what a sandbox can check: no services run against it). */
export interface SandboxValidation {
  integrity: string;
  foreignKeyViolations: number;
  tables: number;
  indexes: number;
  coreTables: number;
  smoke: { passed: number; total: number };
  rows: Record<string, number | null>;
}

const RUN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const MARKER = 'restored.json';

/** The sandbox of one run: never the live database's directory, never a path the run name could move. */
function sandboxOf(t: SqliteTarget, run: string) {
  if (!RUN_NAME.test(run)) throw unsafePath(`drill sandbox name ${JSON.stringify(run)} is not a plain name`);
  const dir = join(t.sandboxDir, run);
  const db = join(dir, basename(t.db));
  const live = [t.db, ...Object.values(companions(t.db))];
  if (live.includes(resolve(db))) throw unsafePath(`drill sandbox ${dir} would be the live database ${t.db}`);
  return { dir, db, marker: join(dir, MARKER) };
}

const readMarker = (path: string) =>
  readFile(path, 'utf8').then(
    (s) => JSON.parse(s) as SandboxRestore,
    () => undefined,
  );

export const createSqliteDrillActivities = (deps: SqliteDeps) => {
  const load = (ref: TargetRef) => loadSqliteTarget(deps.environmentsDir, ref, deps.runner);

  return {
    /**
     * gunzips the backup into the run's sandbox (space checked first), checking both digests against the signed
     * manifest on the way. Idempotent: a finished restore is found by its marker; a half one starts over.
     */
    async restoreIntoSandbox(ref: SandboxRef & { backup: string }): Promise<SandboxRestore> {
      const t = await load(ref);
      const s = sandboxOf(t, ref.run);
      const previous = await readMarker(s.marker);
      if (previous) return previous;
      const backup = (await listTargetBackups(t, deps.signingKey.publicKey)).find((b) => b.file === ref.backup);
      if (!backup?.manifest || backup.problem)
        throw backupInvalid(`${ref.backup}: ${backup ? backup.problem : 'no longer in the backups directory'}`);
      const m = backup.manifest;
      await requireSpace(t.sandboxDir, m.raw.bytes, 'drill sandbox');
      await rm(s.dir, { recursive: true, force: true });
      await ensurePrivateDir(s.dir);
      let progress = 0;
      const r = await heartbeating(
        gunzipFile(backup.path, s.db, (n) => (progress = n)),
        () => ({ restoredBytes: progress }),
      );
      const problem =
        r.gzSha256 !== m.compressed.sha256
          ? `sha256 ${r.gzSha256.slice(0, 16)}… is not its manifest's (changed since it was chosen?)`
          : r.rawSha256 !== m.raw.sha256 || r.rawBytes !== m.raw.bytes
            ? `decompressed to ${r.rawBytes} bytes, sha256 ${r.rawSha256.slice(0, 16)}…: not the manifest's raw ${m.raw.bytes} bytes, ${m.raw.sha256.slice(0, 16)}…`
            : undefined;
      if (problem) {
        await rm(s.dir, { recursive: true, force: true });
        throw backupInvalid(`${ref.backup}: ${problem}`);
      }
      const done: SandboxRestore = {
        dir: s.dir,
        database: s.db,
        backup: ref.backup,
        rawBytes: r.rawBytes,
        rawSha256: r.rawSha256,
        gzBytes: r.gzBytes,
      };
      await writeFileAtomically(s.marker, JSON.stringify(done));
      return done;
    },

    /**
     * The validation checklist (seed §5.2) on the sandbox copy: full integrity_check, foreign keys, core tables,
     * minimum tables and indexes, the smoke queries, and the core row counts against the backup's manifest.
     * VerificationFailed naming every problem.
     */
    async validateSandbox(ref: SandboxRef & { expectRows: Record<string, number | null> }): Promise<SandboxValidation> {
      const t = await load(ref);
      const s = sandboxOf(t, ref.run);
      if (!(await readMarker(s.marker)))
        throw ApplicationFailure.nonRetryable(`${s.dir}: nothing restored there`, ErrorType.VerificationFailed);
      const v = await heartbeating(validateDatabase(s.db, t.config, { integrity: 'full' }));
      const problems = [...v.problems, ...rowCountProblems(ref.expectRows, v.rows)];
      if (problems.length > 0)
        throw ApplicationFailure.nonRetryable(
          `the restored copy fails validation: ${problems.join('; ')}`,
          ErrorType.VerificationFailed,
        );
      return {
        integrity: v.integrity,
        foreignKeyViolations: v.foreignKeyViolations,
        tables: v.tables,
        indexes: v.indexes,
        coreTables: t.config.validation.coreTables.length,
        smoke: { passed: v.sql.filter((q) => q.ok).length, total: v.sql.length },
        rows: v.rows,
      };
    },

    /** Removes the run's sandbox (the drill's last step, and the undo of its restore). Idempotent. */
    async removeSandbox(ref: SandboxRef): Promise<{ removed: string }> {
      const t = await load(ref);
      const s = sandboxOf(t, ref.run);
      await rm(s.dir, { recursive: true, force: true });
      return { removed: s.dir };
    },
  };
};
