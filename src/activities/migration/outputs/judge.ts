import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '../../digest.js';

// What a sound output run looks like (docs/backend-migration.md): `run_<timestamp>/` with summary files of
// `key: value` lines ending in `END`, and (when there is one) `manifest.json` `{ "files": { "<name>": "<sha256>" } }`.

export const CORRUPT_KINDS = ['empty', 'truncated', 'unparsable', 'digest'] as const;
export type CorruptKind = (typeof CORRUPT_KINDS)[number];

const JOB_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const LINE = /^[A-Za-z][A-Za-z _-]*:( .*)?$/;

/** A summary pattern (`optimization_summary_*.txt`) as a regex whose first group is the job id. */
export function summaryMatcher(pattern: string): (name: string) => { job?: string } | undefined {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\?/g, '.');
  const star = escaped.indexOf('*');
  const re = new RegExp(
    `^${star < 0 ? escaped : `${escaped.slice(0, star)}(.+?)${escaped.slice(star + 1).replace(/\*/g, '.*')}`}$`,
  );
  return (name) => {
    const m = re.exec(name);
    if (!m) return undefined;
    return { job: m[1] !== undefined && JOB_ID.test(m[1]) ? m[1] : undefined };
  };
}

/** Why a summary's bytes are not sound (undefined: sound). `job`: the id its name gives, checked against `job:`. */
export function judgeSummary(bytes: Buffer, job?: string): { kind: CorruptKind; detail: string } | undefined {
  if (bytes.length === 0) return { kind: 'empty', detail: 'empty file' };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { kind: 'unparsable', detail: 'not UTF-8 text' };
  }
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (lines[lines.length - 1] !== 'END') return { kind: 'truncated', detail: 'no END line' };
  const body = lines.slice(0, -1);
  const bad = body.findIndex((l) => !LINE.test(l));
  if (bad >= 0) return { kind: 'unparsable', detail: `line ${bad + 1} is not "key: value"` };
  const named = body.find((l) => l.startsWith('job: '))?.slice('job: '.length);
  if (named === undefined) return { kind: 'unparsable', detail: 'no "job:" line' };
  if (job !== undefined && named !== job)
    return { kind: 'unparsable', detail: `"job: ${named}" in the file of ${job}` };
  return undefined;
}

export interface RunFiles {
  /** every file of the run directory → sha256 of its bytes */
  digests: Record<string, string>;
  /** summary file name → job id (undefined: the name gives no valid id) */
  summaries: Record<string, string | undefined>;
  /** the newest mtime of its summaries (ms) */
  mtimeMs: number;
  /** the first problem found, naming the file */
  problem?: { kind: CorruptKind; file: string; detail: string };
}

/** Reads one run directory: its files' digests, its summaries and the first thing wrong with it. */
export async function readRun(dir: string, isSummary: ReturnType<typeof summaryMatcher>): Promise<RunFiles> {
  const names = (await readdir(dir)).filter((n) => !n.startsWith('.')).sort();
  const out: RunFiles = { digests: {}, summaries: {}, mtimeMs: 0 };
  const bytes: Record<string, Buffer> = {};
  for (const name of names) {
    const path = join(dir, name);
    const s = await stat(path);
    if (!s.isFile()) continue;
    bytes[name] = await readFile(path);
    out.digests[name] = sha256(bytes[name]);
    const summary = isSummary(name);
    if (summary) {
      out.summaries[name] = summary.job;
      out.mtimeMs = Math.max(out.mtimeMs, s.mtimeMs);
    }
  }
  let manifest: Record<string, string> | undefined;
  if (bytes['manifest.json']) {
    try {
      const parsed = JSON.parse(bytes['manifest.json'].toString('utf8')) as { files?: unknown };
      if (typeof parsed.files !== 'object' || parsed.files === null) throw new Error('no "files" object');
      manifest = parsed.files as Record<string, string>;
    } catch (err) {
      out.problem = { kind: 'unparsable', file: 'manifest.json', detail: `manifest.json: ${(err as Error).message}` };
      return out;
    }
  }
  for (const [name, job] of Object.entries(out.summaries)) {
    const wrong = judgeSummary(bytes[name]!, job);
    if (wrong) {
      out.problem = { ...wrong, file: name };
      return out;
    }
    if (manifest && manifest[name] !== out.digests[name]) {
      const detail = manifest[name] === undefined ? 'not in manifest.json' : 'sha256 differs from manifest.json';
      out.problem = { kind: 'digest', file: name, detail };
      return out;
    }
  }
  return out;
}

/**
 * Whether a backup copy of a run can be restored: it has a manifest listing every file it holds with the digest
 * of its bytes, and its summaries are sound. Returns why not, or undefined.
 */
export async function backupProblem(
  dir: string,
  isSummary: ReturnType<typeof summaryMatcher>,
): Promise<string | undefined> {
  let run: RunFiles;
  try {
    run = await readRun(dir, isSummary);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'no backup copy' : `backup unreadable: ${(err as Error).message}`;
  }
  if (run.problem) return `backup ${run.problem.file}: ${run.problem.detail}`;
  if (!run.digests['manifest.json']) return 'backup has no manifest.json';
  if (Object.keys(run.summaries).length === 0) return 'backup has no summary';
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { files: Record<string, string> };
  for (const [name, digest] of Object.entries(manifest.files))
    if (run.digests[name] !== digest) return `backup ${name} does not match its manifest`;
  for (const name of Object.keys(run.digests))
    if (name !== 'manifest.json' && manifest.files[name] === undefined) return `backup ${name} is not in its manifest`;
  return undefined;
}
