import { copyFile, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../shared/constants.js';
import { sha256File } from '../digest.js';
import { ensurePrivateDir, writeFileAtomically } from '../files.js';
import { companions, requireSpace } from './target.js';

// The forensic copy of a database (db + wal + shm) before anything replaces it, putting it back (the undo of
// every destructive SQLite step), and installing a new file in its place. The database's services are stopped
// by the runbook before any of these run.

export interface ForensicFile {
  /** db, wal or shm */
  role: 'db' | 'wal' | 'shm';
  name: string;
  bytes: number;
  sha256: string;
}

export interface ForensicCopy {
  dir: string;
  database: string;
  takenAt: string;
  files: ForensicFile[];
  /** companions that did not exist (a put-back removes them if they appeared since) */
  absent: Array<'db' | 'wal' | 'shm'>;
}

const MANIFEST = 'forensics.json';

/** The database's files by role: db, wal, shm. */
export const roles = (db: string) => ({ db, ...companions(db) });

export async function fsyncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** Copies db, wal and shm into `dir` with their digests; a second call returns the first copy (idempotent). */
export async function takeForensicCopy(db: string, dir: string): Promise<ForensicCopy> {
  const existing = await readForensicCopy(dir).catch(() => undefined);
  if (existing) return existing;
  const present: Array<[ForensicFile['role'], string, number]> = [];
  const absent: ForensicCopy['absent'] = [];
  for (const [role, path] of Object.entries(roles(db)) as Array<[ForensicFile['role'], string]>) {
    const st = await stat(path).catch(() => undefined);
    if (st?.isFile()) present.push([role, path, st.size]);
    else absent.push(role);
  }
  await ensurePrivateDir(dir);
  await requireSpace(
    dir,
    present.reduce((n, [, , bytes]) => n + bytes, 0),
    'forensic copy',
  );
  const files: ForensicFile[] = [];
  for (const [role, path] of present) {
    const name = basename(path);
    const tmp = join(dir, `.${name}.partial`);
    await copyFile(path, tmp);
    const fh = await open(tmp, 'r');
    await fh.sync();
    await fh.close();
    await rename(tmp, join(dir, name));
    const [bytes, sha256] = [(await stat(join(dir, name))).size, await sha256File(join(dir, name))];
    // the copy must be the bytes the source had: the services are stopped, so a change here is someone else's
    if (sha256 !== (await sha256File(path)))
      throw ApplicationFailure.retryable(`${path} changed while it was copied (is a service still writing?)`);
    files.push({ role, name, bytes, sha256 });
  }
  const copy: ForensicCopy = { dir, database: db, takenAt: new Date().toISOString(), files, absent };
  await writeFileAtomically(join(dir, MANIFEST), `${JSON.stringify(copy, null, 2)}\n`);
  return copy;
}

export async function readForensicCopy(dir: string): Promise<ForensicCopy> {
  return JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as ForensicCopy;
}

/**
 * Puts the forensic copy back byte-identical: companions that were absent are removed, every file is copied to
 * a temporary name beside the database and renamed into place, then checked against its digest. Idempotent.
 */
export async function putBackForensicCopy(db: string, dir: string): Promise<{ restored: string[]; removed: string[] }> {
  const copy = await readForensicCopy(dir).catch(() => {
    throw ApplicationFailure.nonRetryable(
      `no forensic copy in ${dir}: nothing to put back`,
      ErrorType.VerificationFailed,
    );
  });
  const paths = roles(db);
  const removed: string[] = [];
  for (const role of copy.absent) {
    if (
      await unlink(paths[role]).then(
        () => true,
        () => false,
      )
    )
      removed.push(basename(paths[role]));
  }
  // wal and shm first gone, db in place, then its wal and shm: a database never meets another file's WAL
  const byRole = new Map(copy.files.map((f) => [f.role, f]));
  for (const role of ['wal', 'shm'] as const) if (byRole.has(role)) await unlink(paths[role]).catch(() => {});
  const restored: string[] = [];
  for (const role of ['db', 'wal', 'shm'] as const) {
    const f = byRole.get(role);
    if (!f) continue;
    const target = paths[role];
    if ((await sha256File(target).catch(() => '')) !== f.sha256) {
      const tmp = join(dirname(target), `.${basename(target)}.putback`);
      await copyFile(join(dir, f.name), tmp);
      const fh = await open(tmp, 'r');
      await fh.sync();
      await fh.close();
      await rename(tmp, target);
    }
    const now = await sha256File(target);
    if (now !== f.sha256)
      throw ApplicationFailure.retryable(`${target}: put back, but its digest differs from the forensic copy's`);
    restored.push(basename(target));
  }
  await fsyncDir(dirname(db));
  return { restored, removed };
}

/**
 * Puts `staged` (a complete, validated file in the database's directory) in place of the database: the old
 * wal and shm go first (they belong to the old file), then one atomic rename. Idempotent: a retry after the
 * rename finds the staged file gone and the database already carrying `sha256`.
 */
export async function installDatabase(db: string, staged: string, sha256: string): Promise<'installed' | 'already'> {
  if (dirname(staged) !== dirname(db)) throw new Error('installDatabase: the staged file must be beside the database');
  const stagedThere = await stat(staged).then(
    () => true,
    () => false,
  );
  if (!stagedThere) {
    if ((await sha256File(db).catch(() => '')) === sha256) return 'already';
    throw ApplicationFailure.retryable(`${staged} is gone and ${db} is not the restored file`);
  }
  const { wal, shm } = companions(db);
  await unlink(wal).catch(() => {});
  await unlink(shm).catch(() => {});
  await rename(staged, db);
  await fsyncDir(dirname(db));
  return 'installed';
}
