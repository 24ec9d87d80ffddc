import { stat } from 'node:fs/promises';
import type { SqliteDeps } from './deps.js';
import { heartbeating } from './heartbeat.js';
import { companions, freeBytes, loadSqliteTarget, sameFilesystem, type TargetRef } from './target.js';
import { inThread } from './thread.js';

// Disk space exhaustion (seed §4.3): free space on the database's filesystem against `space.minFree`, and VACUUM
// when there is room for it.

export interface SpaceReport {
  /** free bytes on the database's filesystem (for an unprivileged writer) */
  free: number;
  minFree: number;
  /** free < minFree */
  low: boolean;
  dbBytes: number;
  walBytes: number;
  pageSize: number;
  /** pages on the freelist: what VACUUM gives back */
  freePages: number;
  /** the backups directory is on the database's filesystem (pruning it frees space there) */
  backupsOnSameFilesystem: boolean;
}

const size = (p: string) =>
  stat(p).then(
    (s) => s.size,
    () => 0,
  );

export const createSqliteSpaceActivities = (deps: SqliteDeps) => {
  const load = (ref: TargetRef) => loadSqliteTarget(deps.environmentsDir, ref, deps.runner);

  return {
    /** Free space against the threshold, the database's size and freelist. Read-only (a dry run's plan). */
    async measureSqliteSpace(ref: TargetRef): Promise<SpaceReport> {
      const t = await load(ref);
      const [dbBytes, walBytes, free] = await Promise.all([size(t.db), size(companions(t.db).wal), freeBytes(t.db)]);
      const check = await heartbeating(
        inThread('check', { path: t.db, integrity: 'none', foreignKeys: false, peek: true }),
      );
      return {
        free,
        minFree: t.config.space.minFree,
        low: free < t.config.space.minFree,
        dbBytes,
        walBytes,
        pageSize: check.pageSize ?? 0,
        freePages: check.freelistCount ?? 0,
        backupsOnSameFilesystem: await sameFilesystem(t.db, t.backupsDir),
      };
    },

    /**
     * VACUUM (the services are stopped): only when the filesystem has at least the database's size free — VACUUM
     * writes a temporary copy and, in WAL mode, the WAL: up to twice the database. Otherwise it says why not.
     */
    async vacuumSqliteDatabase(
      ref: TargetRef,
    ): Promise<{ vacuumed: boolean; reason?: string; bytesBefore: number; bytesAfter: number; free: number }> {
      const t = await load(ref);
      const bytesBefore = await size(t.db);
      const free = await freeBytes(t.db);
      if (free < bytesBefore)
        return {
          vacuumed: false,
          reason: `VACUUM needs up to twice the database (${bytesBefore} bytes) and ${free} bytes are free: skipped`,
          bytesBefore,
          bytesAfter: bytesBefore,
          free,
        };
      await heartbeating(inThread('vacuum', { path: t.db }));
      deps.log.info({ target: `${ref.environment}/${ref.target}` }, 'database vacuumed');
      return { vacuumed: true, bytesBefore, bytesAfter: await size(t.db), free: await freeBytes(t.db) };
    },
  };
};
