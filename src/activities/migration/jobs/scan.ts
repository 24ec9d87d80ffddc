import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

async function names(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if (isMissing(err)) return [];
    throw err;
  }
}

/** A shell glob of one path segment (`*`, `?`) as a RegExp; the first `*` captures. */
export function globRegExp(pattern: string): RegExp {
  let first = true;
  const body = pattern
    .split('')
    .map((c) => {
      if (c === '*') {
        const part = first ? '(.+)' : '.*';
        first = false;
        return part;
      }
      if (c === '?') return '.';
      return c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    })
    .join('');
  return new RegExp(`^${body}$`);
}

/**
 * The job ids that have an output: a summary file (`summaryPattern`, the job id where its `*` is) in a
 * `run_<timestamp>/` directory of the outputs.
 */
export async function jobsWithOutput(outputsDir: string, summaryPattern: string): Promise<Set<string>> {
  const summary = globRegExp(summaryPattern);
  const ids = new Set<string>();
  for (const run of await names(outputsDir)) {
    if (!run.startsWith('run_')) continue;
    for (const file of await names(join(outputsDir, run)).catch(() => [])) {
      const m = summary.exec(file);
      if (m?.[1]) ids.add(m[1]);
    }
  }
  return ids;
}

const EVENT = /^\S+ (?:INFO|WARN|ERROR) (Processing|Completed|Failed) job (\S+)/;
const DUAL_WRITE_FAILED = /^\S+ WARN Dual write failed job (\S+)/;

export interface LogGaps {
  /** a `Processing job X` line with no later Completed/Failed line for X */
  unfinished: string[];
  /** `WARN Dual write failed job X`: the secondary backend never got X */
  dualWriteFailed: string[];
  files: number;
  lines: number;
}

/** Reads the processing logs (`pattern` in `dir`, in name order, i.e. by date) for jobs that never finished. */
export async function scanLogs(dir: string, pattern: string, onLine?: () => void): Promise<LogGaps> {
  const file = globRegExp(pattern);
  const open = new Map<string, boolean>();
  const dual = new Set<string>();
  let files = 0;
  let lines = 0;
  for (const name of await names(dir)) {
    if (!file.test(name)) continue;
    files += 1;
    const rl = createInterface({ input: createReadStream(join(dir, name)), crlfDelay: Infinity });
    for await (const line of rl) {
      lines += 1;
      if (lines % 10_000 === 0) onLine?.();
      const e = EVENT.exec(line);
      if (e) {
        open.set(e[2]!, e[1] === 'Processing');
        continue;
      }
      const d = DUAL_WRITE_FAILED.exec(line);
      if (d) dual.add(d[1]!);
    }
  }
  return {
    unfinished: [...open]
      .filter(([, o]) => o)
      .map(([id]) => id)
      .sort(),
    dualWriteFailed: [...dual].sort(),
    files,
    lines,
  };
}
