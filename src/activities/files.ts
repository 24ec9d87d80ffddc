import { randomUUID } from 'node:crypto';
import { chmod, mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import writeFileAtomic from 'write-file-atomic';

/** Evidence, snapshots, work files and keys: readable by the worker's user only. */
export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/**
 * Creates `dir` (and its missing parents) as 0700. An existing directory keeps its mode: tightening a directory
 * someone else shares is their decision, and the files inside are 0600 anyway.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  const created = await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  // mkdir's mode is filtered by the umask; make the directories this call created exactly 0700
  if (created) {
    for (let d = dir; d.length >= created.length; d = dirname(d)) await chmod(d, PRIVATE_DIR_MODE);
  }
}

/**
 * The one atomic write: a temporary file beside `path`, fsync, rename over `path` (write-file-atomic), so a
 * reader sees the old bytes or the new ones, never a torn file. Private (0600 in a 0700 directory) by default.
 */
export async function writeFileAtomically(
  path: string,
  data: string | Buffer,
  /** `keep`: a file someone else owns (a service's flag file) keeps its mode and owner; the directory must exist */
  options: { mode?: number | 'keep' } = {},
): Promise<void> {
  if (options.mode === 'keep') return writeFileAtomic(path, data, { fsync: true });
  await ensurePrivateDir(dirname(path));
  await writeFileAtomic(path, data, { mode: options.mode ?? PRIVATE_FILE_MODE, fsync: true });
}

/**
 * writeFileAtomically for content too large to hold in memory (work files of millions of lines): the chunks are
 * streamed into a private temporary file beside `path`, which is fsynced and renamed over `path`, and the
 * directory is fsynced. 0600 in a 0700 directory.
 */
export async function writeStreamAtomically(path: string, chunks: AsyncIterable<string | Buffer>): Promise<void> {
  const dir = dirname(path);
  await ensurePrivateDir(dir);
  const temp = `${path}.${process.pid}.${randomUUID()}.tmp`;
  try {
    const file = await open(temp, 'wx', PRIVATE_FILE_MODE);
    try {
      // writeFile writes all of the chunk at the current position (write() may write part of it)
      for await (const chunk of chunks) await file.writeFile(chunk);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
