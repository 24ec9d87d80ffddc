import { readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../shared/constants.js';
import { formatBytes } from '../../shared/bytes.js';
import { runCommand } from '../adapters/exec.js';
import { sha256File } from '../digest.js';
import type { SqliteDeps } from './deps.js';
import { fsyncDir, readForensicCopy, roles } from './forensics.js';
import { heartbeating } from './heartbeat.js';
import {
  companions,
  freeBytes,
  insufficientSpace,
  loadSqliteTarget,
  sameFilesystem,
  type SqliteTarget,
  type TargetRef,
} from './target.js';
import { inThread } from './thread.js';

// What the restore and the fresh start need beyond the shared building blocks: the space check of the plan (read
// only, before anything is stopped), deleting the database once its forensic copy holds its bytes, and
// re-initialising it (seed §2.1 step 3) from the target's `sqlite.init`.

const verificationFailed = (message: string) => ApplicationFailure.nonRetryable(message, ErrorType.VerificationFailed);

const sizeOf = (path: string) =>
  stat(path).then(
    (s) => s.size,
    () => 0,
  );

export interface SpaceCheck {
  /** db + wal + shm: what the forensic copy writes */
  forensicBytes: number;
  /** what is written beside the database (a staged restore) */
  stagedBytes: number;
  forensicsFree: number;
  databaseFree: number;
}

/** `<forensicsDir>/<tag>`: where a run's forensic copy lives */
const forensicDir = (t: SqliteTarget, tag: string) => join(t.forensicsDir, tag);

export const createSqliteRecoveryActivities = (deps: SqliteDeps) => {
  const load = (ref: TargetRef) => loadSqliteTarget(deps.environmentsDir, ref, deps.runner);

  return {
    /**
     * Read-only, for the plan: room for the forensic copy (db + wal + shm, in forensicsDir) and for what is staged
     * beside the database (`stagedBytes`: a decompressed backup), each with a 5 % margin, added up when both are
     * on one filesystem. InsufficientSpace names what does not fit before anything is stopped or written.
     */
    async checkRecoverySpace(ref: TargetRef & { stagedBytes: number; what: string }): Promise<SpaceCheck> {
      const t = await load(ref);
      const files = roles(t.db);
      const forensicBytes = (await Promise.all(Object.values(files).map(sizeOf))).reduce((a, b) => a + b, 0);
      const [forensicsFree, databaseFree] = [await freeBytes(t.forensicsDir), await freeBytes(dirname(t.db))];
      const margin = (n: number) => Math.ceil(n * 1.05);
      const check = (free: number, needed: number, where: string, what: string) => {
        if (free < needed)
          throw insufficientSpace(
            `${ref.what}: ${what} needs ${formatBytes(needed)} on the filesystem of ${where}, ${formatBytes(free)} free`,
          );
      };
      if (await sameFilesystem(t.forensicsDir, t.db)) {
        check(
          databaseFree,
          margin(forensicBytes + ref.stagedBytes),
          dirname(t.db),
          'the forensic copy and the staged file',
        );
      } else {
        check(forensicsFree, margin(forensicBytes), t.forensicsDir, 'the forensic copy');
        check(databaseFree, margin(ref.stagedBytes), dirname(t.db), 'the staged file');
      }
      return { forensicBytes, stagedBytes: ref.stagedBytes, forensicsFree, databaseFree };
    },

    /**
     * Deletes db, wal and shm (seed §2.1 step 2) — only when the run's forensic copy holds exactly the bytes that
     * are there now (a file that changed since the copy is not deleted: VerificationFailed). Idempotent.
     */
    async removeSqliteDatabase(ref: TargetRef & { tag: string }): Promise<{ removed: string[] }> {
      const t = await load(ref);
      const copy = await readForensicCopy(forensicDir(t, ref.tag)).catch(() => {
        throw verificationFailed(`no forensic copy in ${forensicDir(t, ref.tag)}: the database is not deleted`);
      });
      const paths = roles(t.db);
      const copied = new Map(copy.files.map((f) => [f.role, f]));
      for (const [role, path] of Object.entries(paths) as Array<[keyof typeof paths, string]>) {
        const now = await heartbeating(sha256File(path).catch(() => undefined));
        if (now !== undefined && now !== copied.get(role)?.sha256)
          throw verificationFailed(
            `${path} changed since its forensic copy (is a service still writing?): not deleted`,
          );
      }
      const removed: string[] = [];
      // wal and shm first: the database file is the last to go, so it never meets another file's WAL
      for (const path of [paths.wal, paths.shm, paths.db]) {
        if (
          await unlink(path).then(
            () => true,
            () => false,
          )
        )
          removed.push(basename(path));
      }
      await fsyncDir(dirname(t.db));
      deps.log.warn({ target: `${ref.environment}/${ref.target}`, removed }, 'database deleted (forensic copy kept)');
      return { removed };
    },

    /**
     * Re-initialises the deleted database from `sqlite.init` (seed §2.1 step 3): an SQL file, run whole in one
     * transaction on a new file beside the database that is renamed into place (never a half-initialised file at
     * the database's path), or a command (argv, no shell; it sees PATH and RUNBOOK_SQLITE_DB only). Idempotent: a
     * database already there (a retry after the rename) is left as it is; the validation step judges it.
     */
    async initSqliteDatabase(
      ref: TargetRef & { tag: string },
    ): Promise<{ state: 'initialised' | 'already'; how: string; tables?: number; indexes?: number }> {
      const t = await load(ref);
      const init = t.config.init;
      if (!init)
        throw ApplicationFailure.nonRetryable(
          `${t.loaded.file}: targets.${ref.target}.sqlite.init: not set (a fresh start needs sqlFile or command)`,
          ErrorType.EnvironmentInvalid,
        );
      if ((await sizeOf(t.db)) > 0) return { state: 'already', how: 'the database was already there' };
      if (t.initSqlFile) {
        const sql = await readFile(t.initSqlFile, 'utf8').catch((err: Error) => {
          throw ApplicationFailure.nonRetryable(
            `${t.loaded.file}: sqlite.init.sqlFile: cannot read ${t.initSqlFile}: ${err.message}`,
            ErrorType.EnvironmentInvalid,
          );
        });
        const fresh = join(dirname(t.db), `.${basename(t.db)}.init-${ref.tag}`);
        const leftovers = [fresh, ...Object.values(companions(fresh))];
        for (const f of leftovers) await unlink(f).catch(() => {});
        try {
          const r = await heartbeating(inThread('init', { path: fresh, sql }));
          await rename(fresh, t.db);
          await fsyncDir(dirname(t.db));
          return { state: 'initialised', how: `sql file ${t.initSqlFile}`, tables: r.tables, indexes: r.indexes };
        } catch (err) {
          for (const f of leftovers) await unlink(f).catch(() => {});
          throw ApplicationFailure.nonRetryable(
            `${t.initSqlFile} failed on a new database (nothing of it kept): ${(err as Error).message}`,
            ErrorType.VerificationFailed,
          );
        }
      }
      const { command, cwd } = init as { command: string[]; cwd?: string };
      const run = deps.runner ?? runCommand;
      try {
        await heartbeating(
          run(command[0]!, command.slice(1), {
            cwd: cwd ? t.loaded.resolvePath(cwd) : undefined,
            env: { PATH: process.env.PATH ?? '/usr/bin:/bin', RUNBOOK_SQLITE_DB: t.db },
            timeoutMs: 30 * 60_000,
          }),
        );
      } catch (err) {
        // a command that failed halfway leaves nothing behind at the database's path
        for (const f of Object.values(roles(t.db))) await unlink(f).catch(() => {});
        throw err;
      }
      if ((await sizeOf(t.db)) === 0)
        throw verificationFailed(`init command ${command.join(' ')} did not create ${t.db}`);
      return { state: 'initialised', how: `command ${command.join(' ')}` };
    },
  };
};
