import { open, stat } from 'node:fs/promises';
import type { LogMatches, LogSource } from './types.js';

/** A log file read from a byte offset; a rotated or truncated file is read from its start. */
export class FileLogSource implements LogSource {
  constructor(private readonly path: string) {}

  describe(): string {
    return `log file ${this.path}`;
  }

  async cursor(): Promise<string> {
    const s = await stat(this.path).catch(() => undefined);
    return s ? `${s.ino}:${s.size}` : '0:0';
  }

  async matchesSince(cursor: string, pattern: RegExp): Promise<LogMatches> {
    const [ino, offsetText] = cursor.split(':');
    const s = await stat(this.path).catch(() => undefined);
    if (!s) return { count: 0, sample: [] };
    let offset = Number(offsetText);
    if (String(s.ino) !== ino || s.size < offset) offset = 0;
    const handle = await open(this.path, 'r');
    try {
      const length = s.size - offset;
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, offset);
      const lines = buffer
        .toString('utf8')
        .split('\n')
        .filter((l) => pattern.test(l));
      return { count: lines.length, sample: lines.slice(0, 5) };
    } finally {
      await handle.close();
    }
  }
}
