import { mkdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDuration } from '../../shared/duration.js';
import type { SqliteTargetConfig } from '../../shared/schemas.js';
import { writeFileAtomically } from '../files.js';
import {
  backupInvalid,
  BACKUP_FORMAT,
  gunzipFile,
  gzipFile,
  listBackups,
  manifestPath,
  writeManifest,
  type BackupManifest,
  type ListedBackup,
  type SignedManifest,
} from './backup-files.js';
import type { SqliteDeps } from './deps.js';
import { heartbeating } from './heartbeat.js';
import { loadSqliteTarget, requireSpace, trustedWorkerKeys, type SqliteTarget, type TargetRef } from './target.js';
import { inThread } from './thread.js';
import { validateDatabase } from './validation.js';

// The backup runbook's activities (seed §3.1, §3.2). A backup is built in <backups>/.work/<name>/ — copy,
// compress, verify — and only then published beside the others with its signed manifest. Each activity is
// idempotent: it finds what an earlier attempt finished (a marker file) and goes on from there.

export interface BackupRef extends TargetRef {
  /** backupName(): `<prefix>_<time>[-tag]`, decided by the workflow */
  name: string;
}

interface CopyDone {
  method: 'backup-api' | 'vacuum-into';
  bytes: number;
  pageSize: number;
  pageCount: number;
}

export interface CompressDone {
  rawBytes: number;
  rawSha256: string;
  gzBytes: number;
  gzSha256: string;
}

export interface VerifyDone {
  at: string;
  counts: BackupManifest['counts'];
  rows: Record<string, number | null>;
  schemaDigest: string;
  foreignKeyViolations: number;
}

const workDir = (t: SqliteTarget, name: string) => join(t.backupsDir, '.work', name);
const marker = (t: SqliteTarget, name: string, step: string) => join(workDir(t, name), `${step}.done.json`);

async function done<T>(t: SqliteTarget, name: string, step: string): Promise<T | undefined> {
  return readFile(marker(t, name, step), 'utf8').then(
    (s) => JSON.parse(s) as T,
    () => undefined,
  );
}
const markDone = (t: SqliteTarget, name: string, step: string, value: unknown) =>
  writeFileAtomically(marker(t, name, step), JSON.stringify(value));

const fileSize = (p: string) =>
  stat(p).then(
    (s) => s.size,
    () => 0,
  );

export const createSqliteBackupActivities = (deps: SqliteDeps) => {
  const load = (ref: TargetRef) => loadSqliteTarget(deps.environmentsDir, ref, deps.runner);

  return {
    /** PRAGMA wal_checkpoint(mode) on the live database (PASSIVE never waits for the writers) */
    async checkpointDatabase(ref: TargetRef & { mode: 'PASSIVE' | 'FULL' | 'RESTART' | 'TRUNCATE' }) {
      const t = await load(ref);
      return heartbeating(inThread('checkpoint', { path: t.db, mode: ref.mode }));
    },

    /** An online copy (SQLite's backup API or VACUUM INTO, on a worker thread): never a copy of the live file. */
    async copyDatabase(ref: BackupRef): Promise<CopyDone> {
      const t = await load(ref);
      const previous = await done<CopyDone>(t, ref.name, 'copy');
      if (previous) return previous;
      const dir = workDir(t, ref.name);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const dest = join(dir, 'copy.db');
      await requireSpace(dir, (await fileSize(t.db)) + (await fileSize(`${t.db}-wal`)), 'backup copy');
      // an earlier attempt's half copy is worthless: start over
      await rm(dest, { force: true });
      await rm(`${dest}-journal`, { force: true });
      const method = t.config.backups.method;
      const r = await heartbeating(inThread('backup', { src: t.db, dest, method }), () => ({ copied: 'running' }));
      const result = { method, ...r };
      await markDone(t, ref.name, 'copy', result);
      return result;
    },

    /** gzip of the copy, streamed (the event loop stays free), digests of both sides. */
    async compressBackup(ref: BackupRef): Promise<CompressDone> {
      const t = await load(ref);
      const previous = await done<CompressDone>(t, ref.name, 'compress');
      if (previous) return previous;
      const dir = workDir(t, ref.name);
      let progress = 0;
      const r = await heartbeating(
        gzipFile(join(dir, 'copy.db'), join(dir, 'backup.db.gz'), t.config.backups.compression, (n) => (progress = n)),
        () => ({ compressedRawBytes: progress }),
      );
      await markDone(t, ref.name, 'compress', r);
      return r;
    },

    /**
     * Decompresses the backup to a temporary file (as a restore would), checks it is the copied bytes, runs
     * integrity_check and the foreign-key check, and counts tables, indexes and core rows.
     */
    async verifyBackup(ref: BackupRef): Promise<VerifyDone> {
      const t = await load(ref);
      const previous = await done<VerifyDone>(t, ref.name, 'verify');
      if (previous) return previous;
      const dir = workDir(t, ref.name);
      const compressed = await done<CompressDone>(t, ref.name, 'compress');
      if (!compressed) throw new Error(`${ref.name}: not compressed yet`);
      const check = join(dir, 'verify.db');
      await requireSpace(dir, compressed.rawBytes, 'backup verification');
      const result = await verifyCompressed(join(dir, 'backup.db.gz'), check, compressed, t.config, ref.name);
      await markDone(t, ref.name, 'verify', result);
      return result;
    },

    /** Moves the verified backup beside the others and writes its signed manifest (last: it marks it verified). */
    async publishBackup(ref: BackupRef & { workflowId: string; runId: string }): Promise<BackupManifest> {
      const t = await load(ref);
      const file = `${ref.name}.db.gz`;
      const final = join(t.backupsDir, file);
      const existing = await readFile(manifestPath(t.backupsDir, file), 'utf8').then(
        (s) => JSON.parse(s) as BackupManifest,
        () => undefined,
      );
      if (existing) return existing;
      const [copy, compressed, verified] = await Promise.all([
        done<CopyDone>(t, ref.name, 'copy'),
        done<CompressDone>(t, ref.name, 'compress'),
        done<VerifyDone>(t, ref.name, 'verify'),
      ]);
      if (!copy || !compressed || !verified) throw new Error(`${ref.name}: not verified yet`);
      await mkdir(t.backupsDir, { recursive: true, mode: 0o700 });
      const gz = join(workDir(t, ref.name), 'backup.db.gz');
      if (await fileSize(gz)) await rename(gz, final);
      const manifest: BackupManifest = {
        format: BACKUP_FORMAT,
        name: ref.name,
        file,
        database: t.db,
        createdAt: new Date(Date.parse(verified.at)).toISOString(),
        method: copy.method,
        raw: { bytes: compressed.rawBytes, sha256: compressed.rawSha256 },
        compressed: { bytes: compressed.gzBytes, sha256: compressed.gzSha256 },
        pageSize: copy.pageSize,
        pageCount: copy.pageCount,
        counts: verified.counts,
        rows: verified.rows,
        schemaDigest: verified.schemaDigest,
        verified: { at: verified.at, integrity: 'ok', foreignKeyViolations: verified.foreignKeyViolations },
        workflowId: ref.workflowId,
        runId: ref.runId,
      };
      const signed = await writeManifest(t.backupsDir, manifest, deps.signingKey);
      await rm(workDir(t, ref.name), { recursive: true, force: true });
      return signed;
    },

    /** Removes the work directory of a backup that did not finish (the workflow's undo of the copy). */
    async discardBackupWork(ref: BackupRef): Promise<void> {
      const t = await load(ref);
      await rm(workDir(t, ref.name), { recursive: true, force: true });
    },

    /**
     * Retention (seed: 30 days): deletes backups older than `retention` — never the newest verified one, never
     * anything but `<prefix>_<time>.db.gz` files and their manifests. `dryRun` only lists what would go.
     */
    async pruneBackups(
      ref: TargetRef & { retention?: string; dryRun?: boolean; keepAtLeast?: number },
    ): Promise<{ deleted: string[]; kept: number; freedBytes: number }> {
      const t = await load(ref);
      const retentionMs = parseDuration(ref.retention ?? t.config.backups.retention);
      const all = await listBackups(t.backupsDir, t.prefix, await trustedWorkerKeys(t, deps.signingKey.publicKey));
      const keep = new Set(
        all
          .filter((b) => !b.problem)
          .slice(0, Math.max(1, ref.keepAtLeast ?? 1))
          .map((b) => b.file),
      );
      const cutoff = Date.now() - retentionMs;
      const doomed = all.filter((b) => !keep.has(b.file) && backupTime(b) < cutoff);
      let freedBytes = 0;
      if (!ref.dryRun) {
        for (const b of doomed) {
          await unlink(b.path).catch(() => {});
          await unlink(manifestPath(t.backupsDir, b.file)).catch(() => {});
          freedBytes += b.bytes;
        }
      } else freedBytes = doomed.reduce((n, b) => n + b.bytes, 0);
      return { deleted: doomed.map((b) => b.file), kept: all.length - doomed.length, freedBytes };
    },

    /** The target's backups, newest first, with why any of them cannot be restored. */
    async listSqliteBackups(
      ref: TargetRef,
    ): Promise<Array<Omit<ListedBackup, 'manifest'> & { createdAt?: string; rawBytes?: number }>> {
      const t = await load(ref);
      const all = await listBackups(t.backupsDir, t.prefix, await trustedWorkerKeys(t, deps.signingKey.publicKey));
      return all.map(({ manifest, ...b }) => ({ ...b, createdAt: manifest?.createdAt, rawBytes: manifest?.raw.bytes }));
    },
  };
};

/**
 * verifyBackup's work on one compressed copy: decompresses `gz` to `check` (as a restore would), checks that it is the
 * bytes `compressed` describes, runs integrity_check and the foreign-key check and counts tables, indexes and core
 * rows. `check` (and any -wal/-shm of it) is removed after.
 */
export async function verifyCompressed(
  gz: string,
  check: string,
  compressed: CompressDone,
  config: SqliteTargetConfig,
  name: string,
): Promise<VerifyDone> {
  try {
    const back = await heartbeating(gunzipFile(gz, check));
    if (back.rawSha256 !== compressed.rawSha256 || back.gzSha256 !== compressed.gzSha256)
      throw backupInvalid(`${name}: the decompressed backup differs from the copy that was compressed`);
    const v = await heartbeating(validateDatabase(check, config, { integrity: 'full', sql: false }));
    if (v.integrity !== 'ok') throw backupInvalid(`${name}: integrity check of the backup: ${v.integrity}`);
    return {
      at: new Date().toISOString(),
      counts: { tables: v.tables, indexes: v.indexes, triggers: v.triggers, views: 0 },
      rows: v.rows,
      schemaDigest: v.schemaDigest!,
      foreignKeyViolations: v.foreignKeyViolations,
    };
  } finally {
    for (const f of [check, `${check}-wal`, `${check}-shm`]) await unlink(f).catch(() => {});
  }
}

/** When a backup was taken: its manifest's time, else the time in its name. */
export function backupTime(b: ListedBackup<SignedManifest>): number {
  if (b.manifest) return Date.parse(b.manifest.createdAt);
  const m = /_(\d{4}-\d{2}-\d{2})_(\d{2})-(\d{2})-(\d{2})/.exec(b.file);
  return m ? Date.parse(`${m[1]}T${m[2]}:${m[3]}:${m[4]}Z`) : Date.parse(b.modifiedAt);
}
