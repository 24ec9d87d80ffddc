/** Section 5's Markdown (BENCHMARKS.md's sqlite-rto block): machine, settings, RTO against the goal, phases, steps. */
import { formatDuration } from '../../src/shared/duration.js';
import type { RunbookResult, StepRecord } from '../../src/shared/types.js';
import type { RtoReport } from '../../src/workflows/sqlite/rto.js';
import { fmtInt, fmtMs } from '../dual-write/format.js';
import { machine, machineRows } from '../support/machine.js';
import type { BenchDatabase } from './database.js';
import { filesystem, sqliteVersions } from './report.js';
import { RTO_GOAL_MS, RTO_WRITE_INTERVAL_MS, RTO_WRITES_AFTER_BACKUP_MS } from './settings.js';

/** A runbook run as the bench saw it: its result and its wall time from start to result. */
export interface TimedRun {
  result: RunbookResult;
  ms: number;
}

export interface SqliteRtoReportInput {
  date: string;
  db: BenchDatabase;
  root: string;
  backup: TimedRun;
  restore: TimedRun;
  rto: RtoReport;
  /** the service's commits during the backup run, between the backup and the restore's start, its failed writes */
  writes: { duringBackup: number; afterBackup: number; errors: number };
  /** tasks in the live database before the restore, and once the restored service answers */
  tasks: { before: number; after: number };
  monitorWindowS: number;
  bundleMs: number;
  load: { start: number[]; end: number[] };
  totalMs: number;
}

/** the step whose end ends each phase (SqliteRecovery.rto) */
const PHASE_ENDS: Record<RtoReport['phases'][number]['phase'], string> = {
  detect: 'the run starts (no `detectedAt`: the bench starts it at the "detection")',
  decide: '`approval`',
  restore: '`install`',
  verify: '`validate`',
  healthy: '`health and smoke`',
};

const stepMs = (s: StepRecord) => (s.startedAt && s.endedAt ? Date.parse(s.endedAt) - Date.parse(s.startedAt) : NaN);
const share = (ms: number, of: number) => `${((100 * ms) / of).toFixed(0)} %`;
const vs = (ms: number, limitMs: number) =>
  `${ms <= limitMs ? 'within' : '**over**'} (${((100 * ms) / limitMs).toFixed(ms < limitMs / 100 ? 1 : 0)} %)`;
const loadText = (l: number[]) => l.map((x) => x.toFixed(2)).join(' / ');
const cell = (text: string) => text.replaceAll('|', '/').replaceAll('\n', ' ');

/** The phase a step falls in: the first whose end is at or after the step's end (after healthy: the monitoring). */
function phaseOf(rto: RtoReport, s: StepRecord): string {
  if (!s.endedAt) return '—';
  const end = Date.parse(s.endedAt);
  const p = rto.phases.find((x) => x.endedAt && end <= Date.parse(x.endedAt));
  return p?.phase ?? 'after healthy';
}

export function sqliteRtoReport(input: SqliteRtoReportInput): string {
  const { db, rto, restore, backup } = input;
  const steps = restore.result.steps;
  const rtoMs = rto.totalMs ?? NaN;
  const start = Date.parse(rto.detectedAt);
  const monitor = steps.find((s) => s.name === 'monitor');
  const throughMonitorMs = monitor?.endedAt ? Date.parse(monitor.endedAt) - start : NaN;
  const timed = steps.filter((s) => Number.isFinite(stepMs(s)) && s.name !== 'approval');
  const withinRto = timed.filter((s) => phaseOf(rto, s) !== 'after healthy');
  const top = [...withinRto].sort((a, b) => stepMs(b) - stepMs(a)).slice(0, 3);
  const backupSteps = backup.result.steps.filter((s) => Number.isFinite(stepMs(s)));
  const approval = steps.find((s) => s.name === 'approval');
  const m = machine();

  const lines = [
    `## SQLite emergency restore RTO (run of ${input.date})`,
    '',
    `Section 5 of \`npm run bench\` (bench/sqlite/rto.ts; \`npx tsx bench/sqlite/main.ts rto\` runs it alone, \`BENCH_SKIP_SQLITE_RTO=1\` skips it). This part took ${fmtMs(input.totalMs)}${db.reused ? ' (the seeded database reused)' : ', seeding included'}.`,
    '',
    ...machineRows(m),
    `| Temporal | ${m.temporal} |`,
    `| SQLite | ${sqliteVersions()} |`,
    `| Files | ${filesystem(input.root)}: the live database, the staged restore, the forensic copy, the backups |`,
    `| Load average (1 / 5 / 15 min) | ${loadText(input.load.start)} at the start, ${loadText(input.load.end)} at the end: the machine is shared, and other work on its 2 cores lengthens every step |`,
    '',
    '### Settings',
    '',
    '| | |',
    '|---|---|',
    `| Database | a copy of the seeded demo database (section 4's): ${fmtInt(db.bytes)} bytes, ${fmtInt(db.rows.tasks ?? 0)} tasks when seeded; the live database of the demo application (src/demo/sqlite-environment.ts, target \`app\`) |`,
    `| Service | the demo service (service.mjs) running and writing one transaction every ${RTO_WRITE_INTERVAL_MS} ms throughout: ${fmtInt(input.writes.duringBackup)} commits during the backup run, ${fmtInt(input.writes.afterBackup)} in the ${RTO_WRITES_AFTER_BACKUP_MS / 1000} s between the backup and the restore (lost from the live database by the restore, kept in its forensic copy): ${fmtInt(input.tasks.before)} tasks before the restore, ${fmtInt(input.tasks.after)} when the restored service answered after it; ${input.writes.errors} failed writes |`,
    `| Backup | the \`sqlite-backup\` runbook (schema defaults: backup API, gzip -1, verify), ${fmtMs(backup.ms)} from start to result (${backupSteps.map((s) => `${s.name} ${fmtMs(stepMs(s))}`).join(', ')}); **not part of the RTO** |`,
    `| Runs | \`sqlite-backup\` then \`sqlite-restore\` (default input: the newest verified backup, \`quick_check\` in the assessment) on a real worker (createWorker, in the bench process) against a Temporal dev server (headless, in-memory); the workflow bundle is built once before (${fmtMs(input.bundleMs)}) |`,
    `| Approval | the bench polls the run's status every 200 ms and approves (signal with the plan hash) as soon as the gate waits: the wait at the gate (the \`approval\` step) is ~0 here, ${approval ? fmtMs(stepMs(approval)) : 'n/a'}, the bench's reaction time, and the **decide** phase is only the runbook's own steps before the gate (lock, load, inspect, choose the backup, check space, seal the plan). In production the decide phase adds human time: paging, reading the plan, the approver's decision |`,
    `| Monitoring window | the environment's \`monitor.window\`: **${input.monitorWindowS} s** (looks every 1 s; the demo's default is 3 s, the seed's 30 minutes). The seed's RTO ends at healthy (\`health and smoke\`), before the window: the RTO below excludes it; "through the monitoring window" includes it |`,
    '',
    `### RTO (goal: start → healthy under ${formatDuration(RTO_GOAL_MS)}; the seed's target ${rto.target})`,
    '',
    `| span | time | vs goal ${formatDuration(RTO_GOAL_MS)} | vs target ${rto.target} |`,
    '|---|---:|---|---|',
    `| **start → healthy (the RTO, from the run's own report)** | **${fmtMs(rtoMs)}** | ${vs(rtoMs, RTO_GOAL_MS)} | ${vs(rtoMs, rto.targetMs)} |`,
    `| start → healthy, without the decide phase | ${fmtMs(rtoMs - (rto.phases.find((p) => p.phase === 'decide')?.ms ?? 0))} | | |`,
    `| start → end of the ${input.monitorWindowS} s monitoring window | ${fmtMs(throughMonitorMs)} | ${vs(throughMonitorMs, RTO_GOAL_MS)} | ${vs(throughMonitorMs, rto.targetMs)} |`,
    `| the whole run as the bench saw it (start → result: + RTO report, evidence) | ${fmtMs(restore.ms)} | | |`,
    '',
    "### Phases (the run's `results.rto`)",
    '',
    '| phase | ends when | time | share of the RTO |',
    '|---|---|---:|---:|',
    ...rto.phases.map(
      (p) =>
        `| ${p.phase} | ${PHASE_ENDS[p.phase]} | ${p.ms === undefined ? '—' : fmtMs(p.ms)} | ${p.ms === undefined ? '—' : share(p.ms, rtoMs)} |`,
    ),
    '',
    "### Steps (the result's step records; history times)",
    '',
    '| step | phase | time | share of the RTO | attempts | result |',
    '|---|---|---:|---:|---:|---|',
    ...steps.map((s) => {
      const ms = stepMs(s);
      const inRto = phaseOf(rto, s) !== 'after healthy';
      return `| ${s.name} | ${phaseOf(rto, s)} | ${fmtMs(ms)} | ${inRto && Number.isFinite(ms) ? share(ms, rtoMs) : '—'} | ${s.attempts} | ${cell((s.result ?? s.status).slice(0, 200))} |`;
    }),
    '',
    `The longest steps within the RTO: ${top.map((s) => `\`${s.name}\` ${fmtMs(stepMs(s))} (${share(stepMs(s), rtoMs)})`).join(', ')}. Between the steps (a phase's time less its steps') is the workflow's own work: workflow and activity task round trips through the server, the RTO published after each step.`,
  ];
  return lines.join('\n');
}
