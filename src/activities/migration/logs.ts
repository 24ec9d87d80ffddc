import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** `job_processor_*.log` → a RegExp over file names (`*` and `?` only) */
export function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** byte offset per log file */
export type LogOffsets = Record<string, number>;

/** The log files of `dir` matching `pattern`, with their sizes. */
export async function logFiles(dir: string, pattern: string): Promise<Record<string, number>> {
  const re = globToRegExp(pattern);
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  const out: Record<string, number> = {};
  for (const name of names.filter((n) => re.test(n)).sort()) {
    const s = await stat(join(dir, name)).catch(() => undefined);
    if (s?.isFile()) out[name] = s.size;
  }
  return out;
}

/** Lines appended to the log files since `offsets` (a file that shrank is read from its start); new offsets. */
export async function linesSince(
  dir: string,
  pattern: string,
  offsets: LogOffsets,
): Promise<{ lines: string[]; offsets: LogOffsets }> {
  const files = await logFiles(dir, pattern);
  const lines: string[] = [];
  const next: LogOffsets = {};
  for (const [name, size] of Object.entries(files)) {
    let from = offsets[name] ?? 0;
    if (from > size) from = 0;
    // only whole lines: a line being written is read at the next look
    const handle = await open(join(dir, name), 'r');
    try {
      const buffer = Buffer.alloc(size - from);
      await handle.read(buffer, 0, buffer.length, from);
      const end = buffer.lastIndexOf(0x0a) + 1;
      lines.push(
        ...buffer
          .subarray(0, end)
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== ''),
      );
      next[name] = from + end;
    } finally {
      await handle.close();
    }
  }
  return { lines, offsets: next };
}
