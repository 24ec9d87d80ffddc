/**
 * BENCHMARKS.md: `npm run bench` rewrites four blocks of it, the results of sections 1 and 2, then after them those
 * of section 3 (dual-write), those of section 4 (SQLite backup), those of section 5 (SQLite emergency restore RTO);
 * the text around them is kept.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as prettier from 'prettier';
import { join } from 'node:path';
import { repoRoot } from '../../src/dev/temporal-server.js';

export const benchmarksFile = join(repoRoot, 'BENCHMARKS.md');
const RESULTS = { start: '<!-- bench:results:start -->', end: '<!-- bench:results:end -->' };
const DUAL_WRITE = { start: '<!-- bench:dual-write:start -->', end: '<!-- bench:dual-write:end -->' };
const DUAL_WRITE_INCREMENTAL = {
  start: '<!-- bench:dual-write-incremental:start -->',
  end: '<!-- bench:dual-write-incremental:end -->',
};
const SQLITE = { start: '<!-- bench:sqlite:start -->', end: '<!-- bench:sqlite:end -->' };
const SQLITE_RTO = { start: '<!-- bench:sqlite-rto:start -->', end: '<!-- bench:sqlite-rto:end -->' };
const REPLAY = { start: '<!-- bench:replay:start -->', end: '<!-- bench:replay:end -->' };

/** the file's beginning when there is no file yet */
const INTRO = [
  '# Benchmarks',
  '',
  '`npm run bench` (bench/run.ts) starts its own Temporal dev server (free port, headless, in-memory), runs the',
  'measurements below against it, prints the tables, rewrites the results sections of this file, and stops every',
  'process it started. It takes about 18 minutes, nearly all of it sections 3 and 4 (`BENCH_SKIP_DUAL_WRITE=1` and',
  '`BENCH_SKIP_SQLITE=1` skip them: about a minute without both); it gives up after 30 minutes. `BENCH_SMOKE=1 npm run',
  'bench` runs every section at a small size (one or two runs, 20,000 objects, a 30 MB database; about two minutes)',
  'only to prove that each one works: it prints its tables but leaves this file alone.',
  '',
  '1. **Engine overhead** (bench/engine/overhead.ts): a runbook of no-op activity steps (`Runbook.step`,',
  '   bench/engine/workflows.ts `benchEngineSteps`) against the same activity calls made directly in a plain workflow',
  '   (`benchDirectSteps`), on one worker.',
  '2. **Resume after SIGKILL** (bench/engine/resume.ts): a worker child process (bench/engine/worker-child.ts) is',
  '   killed with SIGKILL while a heartbeating step runs; a new worker process is spawned and the bench measures from',
  '   its spawn until the interrupted step runs again and until the next steps complete (history event times).',
  '   Both run on the dev server and then, in the same run, on a Temporal cluster (bench/engine/cluster.ts:',
  '   src/dev/cluster.ts, services in processes of their own on PostgreSQL); `BENCH_SKIP_CLUSTER=1` leaves it out.',
  '3. **Dual-write detection and repair** (bench/dual-write/, knobs in its settings.ts): 1M objects at 0.1 %, 1 % and',
  '   10 % drift for PG ↔ object store and PG ↔ SQLite, every store seeded with stored row fingerprints —',
  "   `diffStores` defaults (`bisect`: windows of 64-row segments summed from the stores' covering (key, fingerprint)",
  '   indexes), the streaming merge and a naive export-and-sort baseline — the repair of the 1 % cases by the real',
  '   workflow, and the resume cost of that repair after its worker process is SIGKILLed during execute.',
  '   `npx tsx bench/dual-write/main.ts` runs this section alone.',
  '4. **SQLite backup** (bench/sqlite/, knobs in its settings.ts): backup + verify of a 1 GB demo SQLite database —',
  '   `cp` of the file as the baseline, the backup activities (backup API in one step on a worker thread, gzip -1 and',
  '   -6; `VACUUM INTO`), the backup API in steps on the main thread and `sqlite3 .backup` — each copy alone and end to',
  "   end, their event-loop pauses, and the backup under the demo service's concurrent writes. All its runs are",
  '   warm-cache (each starts right after a full read of the database; the page cache is never dropped).',
  '   `npx tsx bench/sqlite/main.ts` runs this section alone.',
  '5. **SQLite emergency restore RTO** (bench/sqlite/rto.ts): the `sqlite-restore` runbook end to end on the 1 GB',
  '   demo database with the demo service running and writing, after a `sqlite-backup` run: from start to healthy',
  '   against the 2-minute goal and the 1-hour target, per phase and per step. `npx tsx bench/sqlite/main.ts rto`',
  '   runs this section alone.',
  '6. **Missed-job replay** (bench/replay/): the `job-replay` runbook requeueing 10,000 failed jobs of the demo',
  '   processor, unpaced, against a direct loop over the same files, and the duplicates after three worker SIGKILLs',
  '   during the replay. `npx tsx bench/replay/main.ts` runs this section alone.',
  '',
  'The results below are from one run on the machine described; rerun `npm run bench` to refresh them.',
  '',
].join('\n');

/**
 * Replaces the block between `marks` in `file`. A new block goes right after the `after` marker when the file has
 * one, else at its end; a new file starts with `intro`.
 */
export function writeBlock(
  file: string,
  marks: { start: string; end: string },
  markdown: string,
  options: { after?: string; intro?: string } = {},
): void {
  const block = `${marks.start}\n${markdown}\n${marks.end}`;
  const text = existsSync(file) ? readFileSync(file, 'utf8') : (options.intro ?? '');
  const start = text.indexOf(marks.start);
  const end = text.indexOf(marks.end);
  if (start >= 0 && end > start) {
    writeFileSync(file, `${text.slice(0, start)}${block}${text.slice(end + marks.end.length)}`);
    return;
  }
  const at = options.after ? text.indexOf(options.after) : -1;
  if (at >= 0) {
    const cut = at + options.after!.length;
    writeFileSync(file, `${text.slice(0, cut)}\n\n${block}${text.slice(cut)}`);
    return;
  }
  writeFileSync(file, `${text}${text.endsWith('\n') || text === '' ? '' : '\n'}\n${block}\n`);
}

/** Formats the file as `prettier --check .` in `npm test` expects (the sections' tables are written unaligned). */
export async function formatBenchmarksFile(file = benchmarksFile): Promise<void> {
  if (!existsSync(file)) return;
  const text = readFileSync(file, 'utf8');
  const formatted = await prettier.format(text, { ...(await prettier.resolveConfig(file)), filepath: file });
  if (formatted !== text) writeFileSync(file, formatted);
}

/** The results of sections 1 and 2. */
export const writeEngineResults = (markdown: string, file = benchmarksFile): void =>
  writeBlock(file, RESULTS, markdown, { intro: INTRO });

/** The results of section 3, after those of sections 1 and 2 when its block is new. */
export const writeDualWriteResults = (markdown: string, file = benchmarksFile): void =>
  writeBlock(file, DUAL_WRITE, markdown, { after: RESULTS.end, intro: INTRO });

/** The results of section 4, after those of section 3 when its block is new. */
export const writeSqliteResults = (markdown: string, file = benchmarksFile): void =>
  writeBlock(file, SQLITE, markdown, { after: DUAL_WRITE.end, intro: INTRO });

/** The results of section 5, after those of section 4 when its block is new. */
export const writeSqliteRtoResults = (markdown: string, file = benchmarksFile): void =>
  writeBlock(file, SQLITE_RTO, markdown, { after: SQLITE.end, intro: INTRO });

/** The incremental re-check's results (bench/dual-write/incremental.ts), after those of section 3 when new. */
export const writeDualWriteIncrementalResults = (markdown: string, file = benchmarksFile): void =>
  writeBlock(file, DUAL_WRITE_INCREMENTAL, markdown, { after: DUAL_WRITE.end, intro: INTRO });

/** The results of section 6 (missed-job replay), after those of section 5 when its block is new. */
export const writeReplayResults = (markdown: string, file = benchmarksFile): void =>
  writeBlock(file, REPLAY, markdown, { after: SQLITE_RTO.end, intro: INTRO });
