/** Section 4's Markdown (BENCHMARKS.md's sqlite block): machine, settings, copies, end to end, pauses, writes, decision. */
import { execFileSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { fmtInt, fmtMs } from '../dual-write/format.js';
import { machine, machineRows } from '../support/machine.js';
import type { BenchDatabase } from './database.js';
import { configText, type Decision } from './decision.js';
import type { Pauses } from './probe.js';
import type { CopyMethod, PhasedRun } from './runs.js';
import {
  ACTIVITIES_RUNS,
  COPY_RUNS,
  DECISION_MARGIN,
  GOALS,
  GZIP_LEVELS,
  IDLE_PROBE_MS,
  PROBE_INTERVAL_MS,
  STEPPED_BUDGET_FACTOR,
  STEPPED_BUDGET_MIN_MS,
  WRITES_SETTLE_MS,
} from './settings.js';
import type { WritesResult } from './writes.js';

export interface CopyStats {
  method: CopyMethod;
  /** median wall time */
  ms: number;
  /** the pauses over all its runs */
  pause: Pauses;
  /** the copy's size */
  bytes: number;
  /** the copy's journal mode (WAL or rollback, in its header) is the database's: a restore of it opens the same way */
  keepsWal: boolean;
  samples: number[];
}

export interface SqliteReportInput {
  date: string;
  db: BenchDatabase;
  root: string;
  /** the pauses of the idle bench process over IDLE_PROBE_MS */
  idle: Pauses;
  copies: CopyStats[];
  zlib: PhasedRun[];
  runs: PhasedRun[];
  writes: WritesResult;
  decision: Decision;
  load: { start: number[]; end: number[] };
  totalMs: number;
}

const MB = 1e6;
const PHASES = ['checkpoint', 'copy', 'compress', 'verify', 'publish'];
const rate = (bytes: number, ms: number) => `${(bytes / MB / (ms / 1000)).toFixed(0)} MB/s`;
const ratio = (cpMs: number, ms: number) => `${(cpMs / ms).toFixed(2)}×`;
const yes = (ok: boolean) => (ok ? 'yes' : '**no**');
const loadText = (l: number[]) => l.map((x) => x.toFixed(2)).join(' / ');
const phase = (r: PhasedRun, name: string) => r.phases.find((p) => p.name === name);
const phaseMs = (r: PhasedRun, name: string) => phase(r, name)?.ms ?? NaN;
const mb = (bytes: number) => `${fmtInt(bytes / MB)} MB`;
/** "114 ms · own 12 ms": the longest pause, and the largest own part (less the wait for a CPU) of any pause */
const fmtPause = (p: Pauses) => (p.longest.ms < 1 ? '< 1 ms' : `${fmtMs(p.longest.ms)} · own ${fmtMs(p.ownMs)}`);
const pauseCell = (inProcess: boolean, p: Pauses) => (inProcess ? fmtPause(p) : '— (another process)');
const pauseOk = (p: Pauses) => yes(p.ownMs < GOALS.pauseMs);

export function sqliteReport(input: SqliteReportInput): string {
  const { db, copies, runs, writes, decision } = input;
  const cp = copies.find((c) => c.method.id === 'cp')!;
  const verified = runs.filter((r) => r.id !== 'no-gzip');
  const best = [...verified].sort((a, b) => a.totalMs - b.totalMs)[0]!;
  const noGzip = runs.find((r) => r.id === 'no-gzip')!;
  const inProcess = runs.filter((r) => r.inProcess);
  const worst = [...inProcess].sort((a, b) => b.pause.ownMs - a.pause.ownMs)[0]!;
  const p = writes.pipeline;
  const snapshot =
    writes.tasks.backup !== null &&
    writes.tasks.copyStart <= writes.tasks.backup &&
    writes.tasks.backup <= writes.tasks.copyEnd;

  const lines = [
    `## SQLite backup (run of ${input.date})`,
    '',
    `Section 4 of \`npm run bench\` (bench/sqlite/; \`npx tsx bench/sqlite/main.ts\` runs it alone, \`BENCH_SKIP_SQLITE=1\` skips it). This part took ${fmtMs(input.totalMs)}${db.reused ? ' (the seeded database reused)' : ', seeding included'}.`,
    '',
    ...machineRows(machine()),
    `| SQLite | ${sqliteVersions()} |`,
    `| Files | ${filesystem(input.root)}: the database, its copies and backups |`,
    `| Load average (1 / 5 / 15 min) | ${loadText(input.load.start)} at the start, ${loadText(input.load.end)} at the end: the machine is shared, and other work on its 2 cores lengthens times and pauses alike |`,
    '',
    '### Settings',
    '',
    '| | |',
    '|---|---|',
    `| Database | the demo application's (src/demo/sqlite-app), seeded by \`seedSqliteDatabase\` (core + memory + vector milestones): ${fmtInt(db.bytes)} bytes; ${['tasks', 'audit', 'memory_entries', 'document_index'].map((t) => `${fmtInt(db.rows[t] ?? 0)} ${t}`).join(', ')}, …; WAL mode, checkpointed; seeded in ${fmtMs(db.seedMs)} |`,
    `| Cache | **warm**: every run starts right after a full read of the database file (into the page cache), and \`sync\` runs after each, so that its writeback does not fall into the next. The page cache is never dropped; a cold-cache backup reads the disk, which changes every figure, \`cp\`'s first |`,
    `| Copy alone | ${COPY_RUNS} run${COPY_RUNS > 1 ? 's' : ''} per method; the median. The copy is deleted after each run |`,
    `| End to end | copy → gzip → verify. The \`activities\` rows call the runbook's activities (src/activities/sqlite/backup.ts: \`checkpointDatabase\` PASSIVE, \`copyDatabase\`, \`compressBackup\`, \`verifyBackup\`, \`publishBackup\`) directly, ${ACTIVITIES_RUNS} run${ACTIVITIES_RUNS > 1 ? 's' : ''} per configuration, interleaved, on an environment per configuration (no Temporal server: outside an activity \`heartbeating\` only runs the work). The other rows, one run each, copy by their own method, then run the same compress and verify code (\`gzipFile\`, \`verifyCompressed\`). Verify = gunzip to a temporary file with sha256 of both sides checked against the compress step's, \`integrity_check\`, \`foreign_key_check\`, row counts of the core tables |`,
    `| × cp | \`cp\`'s median copy time ÷ the run's time: throughput relative to \`cp\` of the same file (goal for backup + verify: ≥ ${GOALS.ratioToCp}×). MB/s counts the database's bytes (10^6) |`,
    `| Event-loop pause | a ${PROBE_INTERVAL_MS} ms timer on the bench process's main thread (the activity worker's stand-in): a pause is a gap between its ticks less ${PROBE_INTERVAL_MS} ms. Each pause is split by the thread's scheduler counters (/proc/thread-self/schedstat) into the time it was runnable but **waiting for a CPU** held by other work, and the rest, the process's own (running, or blocked in a call). Shown as "longest · own X": the longest pause, and the largest own part of any pause; the goal (under ${GOALS.pauseMs} ms) is judged on the own part. The split does not see all that is not the process's (time the host takes this VM's CPU, memory-management stalls): the own part is an upper bound. The idle bench process, probed for ${IDLE_PROBE_MS / 1000} s before the runs: ${fmtPause(input.idle)}. \`cp\` and \`sqlite3\` run in processes of their own |`,
    `| Under writes | the demo service (service.mjs \`--write-interval-ms ${writes.intervalMs}\`) writes one transaction every ${writes.intervalMs} ms to a copy of the database (${fmtInt(writes.idleWritesPerSecond)} commits/s with nothing else running); after ${WRITES_SETTLE_MS / 1000} s of writes the activities' pipeline runs in the chosen configuration, then the stepped backup API, given up after max(${STEPPED_BUDGET_MIN_MS / 1000} s, ${STEPPED_BUDGET_FACTOR} × its quiet copy time) |`,
    '',
    `### Copy alone (median of ${COPY_RUNS})`,
    '',
    '| method | consistent while another connection writes | keeps WAL mode | copy size | time | MB/s | × cp | longest pause | runs |',
    '|---|---|---|---:|---:|---:|---:|---:|---|',
    ...copies.map(
      (c) =>
        `| ${c.method.label} | ${c.method.consistent ? 'yes' : 'no: a torn copy'} | ${c.keepsWal ? 'yes' : '**no**: a rollback-journal database'} | ${mb(c.bytes)} | ${fmtMs(c.ms)} | ${rate(db.bytes, c.ms)} | ${ratio(cp.ms, c.ms)} | ${pauseCell(c.method.inProcess, c.pause)} | ${c.samples.map((s) => fmtMs(s)).join(', ')} |`,
    ),
    '',
    `### Backup + verify, end to end (goals: ≥ ${GOALS.ratioToCp}× cp; pause under ${GOALS.pauseMs} ms)`,
    '',
    `| alternative | ${PHASES.join(' | ')} | **total** | MB/s | × cp | ≥ ${GOALS.ratioToCp}× cp | longest pause | own < ${GOALS.pauseMs} ms | gzip file |`,
    `|---|${PHASES.map(() => '---:').join('|')}|---:|---:|---:|---|---:|---|---:|`,
    ...runs.map((r) => {
      const cells = PHASES.map((name) => (phase(r, name) ? fmtMs(phaseMs(r, name)) : '—'));
      const gz = r.gzBytes && r.rawBytes ? `${mb(r.gzBytes)} (${((100 * r.gzBytes) / r.rawBytes).toFixed(1)} %)` : '—';
      return `| ${r.label} | ${cells.join(' | ')} | **${fmtMs(r.totalMs)}** | ${rate(db.bytes, r.totalMs)} | ${ratio(cp.ms, r.totalMs)} | ${yes(cp.ms / r.totalMs >= GOALS.ratioToCp)} | ${pauseCell(r.inProcess, r.pause)} | ${r.inProcess ? pauseOk(r.pause) : '—'} | ${gz} |`;
    }),
    '',
    ratioGoal(cp.ms, best, noGzip, db.bytes),
    '',
    compression(runs, noGzip),
    '',
    `### Event-loop pauses per phase (the longest · the largest own part)`,
    '',
    `| run | ${PHASES.join(' | ')} |`,
    `|---|${PHASES.map(() => '---:').join('|')}|`,
    ...inProcess.map(
      (r) =>
        `| ${r.label} | ${PHASES.map((name) => (phase(r, name) ? fmtPause(phase(r, name)!.pause) : '—')).join(' | ')} |`,
    ),
    '',
    `Where zlib runs: gzip -${GZIP_LEVELS[0]} then gunzip of the database file, the same streams (sha256 of both sides), on the main thread as \`gzipFile\` and \`gunzipFile\` ran them before, and on a worker thread (thread.mjs) as they run now:`,
    '',
    `| where | gzip | gunzip | longest pause | own < ${GOALS.pauseMs} ms |`,
    '|---|---:|---:|---:|---|',
    ...input.zlib.map(
      (r) =>
        `| ${r.label} | ${fmtMs(phaseMs(r, 'compress'))} (pause ${fmtPause(phase(r, 'compress')!.pause)}) | ${fmtMs(phaseMs(r, 'decompress'))} (pause ${fmtPause(phase(r, 'decompress')!.pause)}) | ${fmtPause(r.pause)} | ${pauseOk(r.pause)} |`,
    ),
    '',
    `**Pause under ${GOALS.pauseMs} ms (own part): ${
      inProcess.every((r) => r.pause.ownMs < GOALS.pauseMs)
        ? 'met by every in-process alternative'
        : `not met by ${inProcess
            .filter((r) => r.pause.ownMs >= GOALS.pauseMs)
            .map((r) => r.label)
            .join('; ')}`
    }.** The largest own part of a pause: ${fmtMs(worst.pause.ownMs)} (${worst.label}); the activities' runs: at most ${fmtMs(Math.max(...runs.filter((r) => r.config).map((r) => r.pause.ownMs)))}; the idle process's pause: ${fmtPause(input.idle)}. The backup API in steps on the main thread copies each step there, and its last step commits the copy (SQLite syncs the whole new file) on the main thread too.`,
    '',
    `### Under concurrent writes (the service writing every ${writes.intervalMs} ms)`,
    '',
    '| backup | completed | time | service commits meanwhile | restarts | integrity_check of the result | longest pause |',
    '|---|---|---:|---:|---:|---|---:|',
    `| ${p.label} (checkpoint → copy → compress → verify → publish) | yes | ${fmtMs(p.totalMs)} (copy ${fmtMs(phaseMs(p, 'copy'))}) | ${fmtInt(writes.writesDuringBackup)} (${fmtInt(writes.writesDuringCopy)} during the copy) | none: ${p.config?.method === 'vacuum-into' ? '`VACUUM INTO` reads' : 'one step reads'} one snapshot | ok (its verify) | ${fmtPause(p.pause)} |`,
    ...writes.stepped.map(
      (s) =>
        `| backup API, ${s.pages} pages per step, main thread | ${s.completed ? 'yes' : `**no**: given up after ${fmtMs(s.budgetMs)}`} | ${fmtMs(s.ms)} | ${fmtInt(s.writes)} | ${fmtInt(s.restarts ?? 0)} in ${fmtInt(s.steps ?? 0)} steps | ${s.integrity ?? '—'} | ${fmtPause(s.pause)} |`,
    ),
    '',
    `The activities' backup completed while the service committed ${fmtInt(writes.writesDuringBackup)} transactions, ${writes.writeErrors === 0 ? 'none of them failing' : `**${writes.writeErrors} of them failing**`}; its verify passed integrity_check on the decompressed backup. The backup holds ${writes.tasks.backup === null ? 'n/a' : fmtInt(writes.tasks.backup)} tasks; the live database had ${fmtInt(writes.tasks.copyStart)} when the copy started and ${fmtInt(writes.tasks.copyEnd)} when it ended: ${snapshot ? 'one snapshot, taken during the copy' : '**not a snapshot of the time of the copy**'}. The backup API in steps restarts whenever another connection has written since its last step${writes.stepped.every((s) => !s.completed) ? ', here every few steps: it never finishes a database of this size under these writes' : ''}.`,
    '',
    '### Decision',
    '',
    '| configuration of the activities | median end to end | longest pause | own pause within goal | backup keeps WAL mode |',
    '|---|---:|---:|---|---|',
    ...decision.configs.map(
      (c) =>
        `| ${configText(c.config)} | ${fmtMs(c.medianMs)} | ${fmtPause(c.pause)} | ${yes(c.withinPauseGoal)} | ${yes(c.keepsWal)} |`,
    ),
    '',
    `**Chosen by benchmark: ${configText(decision.chosen)}** — ${decision.reason} (rule: of the configurations whose own pauses are within the goal and whose backup is the same kind of database as the live one — WAL mode kept, so that a restore opens as the application left it — the fastest by median end to end; the schema's default stays unless beaten by more than ${100 * DECISION_MARGIN} %). The schema defaults (src/shared/schemas/sqlite.ts) are ${configText(decision.schemaDefault)}: ${decision.chosen.method === decision.schemaDefault.method && decision.chosen.compression === decision.schemaDefault.compression ? 'they agree' : '**they differ: set them to the chosen configuration**'}.`,
  ];
  return lines.join('\n');
}

function ratioGoal(cpMs: number, best: PhasedRun, noGzip: PhasedRun, bytes: number): string {
  const goal = GOALS.ratioToCp;
  const checks = phaseMs(noGzip, 'verify');
  const head =
    cpMs / best.totalMs >= goal
      ? `**Goal ≥ ${goal}× cp: met** by ${best.label}.`
      : `**Goal ≥ ${goal}× cp: not met by any alternative.**`;
  const floor =
    checks > cpMs / goal
      ? ': any verify that reads every page and index through SQLite misses the goal by itself, with or without gzip'
      : '';
  return [
    `${head} \`cp\` copies the file in ${fmtMs(cpMs)} (${rate(bytes, cpMs)}); ${goal}× cp allows ${fmtMs(cpMs / goal)} for backup + verify.`,
    `The fastest verified backup took ${fmtMs(best.totalMs)} (${ratio(cpMs, best.totalMs)}, ${best.label}).`,
    `Without compression, copy + the same checks took ${fmtMs(noGzip.totalMs)} (${ratio(cpMs, noGzip.totalMs)}), of which the checks alone (integrity_check, foreign_key_check, counts) ${fmtMs(checks)} = ${(checks / cpMs).toFixed(1)} × \`cp\`'s whole time${floor}.`,
  ].join(' ');
}

/** What gzip costs: level 1 against no compression, level 6 against level 1 (the activities' backup-api runs). */
function compression(runs: PhasedRun[], noGzip: PhasedRun): string {
  const level = (c: number) => runs.filter((r) => r.config?.method === 'backup-api' && r.config.compression === c);
  const [l1, l6] = [level(1), level(6)];
  if (!l1.length || !l6.length) return '';
  const avg = (rs: PhasedRun[], pick: (r: PhasedRun) => number) => rs.reduce((n, r) => n + pick(r), 0) / rs.length;
  const c1 = avg(l1, (r) => phaseMs(r, 'compress'));
  const c6 = avg(l6, (r) => phaseMs(r, 'compress'));
  const gunzip1 = avg(l1, (r) => phaseMs(r, 'verify')) - phaseMs(noGzip, 'verify');
  const total1 = avg(l1, (r) => r.totalMs);
  const share = (rs: PhasedRun[]) => (100 * avg(rs, (r) => r.gzBytes!)) / avg(rs, (r) => r.rawBytes!);
  return `Compression (the activities with \`backup-api\`, averages of their runs): gzip -1 costs ${fmtMs(c1)} to compress plus about ${fmtMs(gunzip1)} of gunzip in the verify (its verify less the checks of the no-gzip row), ${((100 * (c1 + gunzip1)) / total1).toFixed(0)} % of its ${fmtMs(total1)}, for a file of ${share(l1).toFixed(1)} % of the database; gzip -6 compresses in ${fmtMs(c6)} (${(c6 / c1).toFixed(1)}× level 1) to ${share(l6).toFixed(1)} % (${(100 * (1 - share(l6) / share(l1))).toFixed(0)} % smaller than level 1).`;
}

export function sqliteVersions(): string {
  const memory = new Database(':memory:');
  const bundled = memory.prepare('SELECT sqlite_version()').pluck().get() as string;
  memory.close();
  let cli = 'not installed';
  try {
    cli = execFileSync('sqlite3', ['--version'], { encoding: 'utf8', timeout: 10_000 }).split(' ')[0]!;
  } catch {
    // reported as not installed
  }
  return `${bundled} (better-sqlite3, in process); the \`sqlite3\` command ${cli}`;
}

export function filesystem(dir: string): string {
  try {
    const [, line] = execFileSync('df', ['-T', dir], { encoding: 'utf8', timeout: 10_000 }).trim().split('\n');
    const [source, type] = line!.split(/\s+/);
    return `${type} on ${source}`;
  } catch {
    return 'unknown';
  }
}
