import { readFile } from 'node:fs/promises';
import { writeFileAtomically } from '../../files.js';

/** A file store's snapshot: its bytes. */
export function readSnapshotFile(path: string): Promise<Buffer> {
  return readFile(path);
}

/** Puts the bytes back (atomic, the file keeps its mode and owner); nothing when they are already there. */
export async function restoreFileSnapshot(path: string, content: Buffer): Promise<{ changed: boolean }> {
  const current = await readFile(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (current?.equals(content)) return { changed: false };
  // the service's file: it keeps its mode and owner (a file that is gone comes back with the default mode)
  await writeFileAtomically(path, content, { mode: 'keep' });
  return { changed: true };
}
