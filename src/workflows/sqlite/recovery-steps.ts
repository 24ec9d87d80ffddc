import type { z } from 'zod';
import type { SqliteActivities } from '../../activities/sqlite/index.js';
import type { SqliteTargetDescription } from '../../activities/sqlite/describe.js';
import { formatBytes } from '../../shared/bytes.js';
import { parseDuration } from '../../shared/duration.js';
import type { sqliteRecoveryInputSchema, SqliteRecoveryInput } from '../../shared/schemas.js';
import { runbookActivities } from '../engine/activity-options.js';
import type { Runbook } from '../engine/runbook.js';
import { monitorWindow } from './monitor.js';

// The sqlite-recovery runbook's step list and the steps its three scenarios share (src/workflows/sqlite-recovery.ts
// reads as the procedure of each scenario).

export const acts = runbookActivities<SqliteActivities>('quick');
export const long = runbookActivities<SqliteActivities>('long');
export const verify = runbookActivities<SqliteActivities>('verify');
export const undo = runbookActivities<SqliteActivities>('undo');

export const SQLITE_RECOVERY_STEPS = [
  'load environment',
  'assess',
  'seal plan',
  'approval',
  'checkpoint',
  'prune backups',
  'stop services',
  'forensic copy',
  'recover',
  'validate recovered',
  'install recovered',
  'restore backup',
  'move wal aside',
  'vacuum',
  'validate',
  'start services',
  'health check',
  'measure space',
  'monitor',
] as const;
export type Step = (typeof SQLITE_RECOVERY_STEPS)[number];

/** the steps each scenario runs; the others are marked skipped at the start */
export const SCENARIO_STEPS: Record<SqliteRecoveryInput['scenario'], Step[]> = {
  corruption: [
    'stop services',
    'forensic copy',
    'recover',
    'validate recovered',
    'install recovered',
    'restore backup',
    'validate',
    'start services',
    'health check',
    'monitor',
  ],
  wal: ['stop services', 'forensic copy', 'move wal aside', 'validate', 'start services', 'health check', 'monitor'],
  'disk-full': [
    'checkpoint',
    'prune backups',
    'stop services',
    'vacuum',
    'start services',
    'health check',
    'measure space',
  ],
};
export const COMMON: Step[] = ['load environment', 'assess', 'seal plan', 'approval'];

export type Ref = { environment: string; target: string };
export type Rb = Runbook<Step>;

export interface Context {
  /** the monitoring window: the environment's, or the input's when longer (undefined in runs from before that check) */
  window?: string;
  rb: Rb;
  ref: Ref;
  target: SqliteTargetDescription;
  tag: string;
  report: Record<string, unknown>;
  input: z.output<typeof sqliteRecoveryInputSchema>;
}

/** Ends a run that found nothing to do: the remaining steps are skipped with the reason, nothing changed. */
export function nothingToDo(c: Context, why: string): void {
  c.report.outcome = why;
  for (const step of SQLITE_RECOVERY_STEPS)
    if (c.rb.state.steps.find((s) => s.name === step)?.status === 'pending') c.rb.skip(step, why);
}

export const allServices = (c: Context) => c.target.services.map((s) => s.name);

export async function stopServices(c: Context): Promise<void> {
  const services = allServices(c);
  await c.rb.step('stop services', () => acts.stopSqliteServices({ ...c.ref, services }), {
    summarize: (s) => s.services.map((x) => `${x.name} stopped`).join(', ') || 'no services',
    undoBefore: () => undo.startSqliteServices({ ...c.ref, services }),
  });
}

/** start → health (→ monitor): the tail every scenario that stopped the services shares. */
export async function startAndWatch(c: Context, monitor: boolean): Promise<void> {
  await c.rb.step('start services', () => acts.startSqliteServices({ ...c.ref, services: allServices(c) }), {
    summarize: (s) => s.services.map((x) => `${x.name}: ${x.detail}`).join(', ') || 'no services',
  });
  await c.rb.step('health check', () => verify.checkSqliteHealth(c.ref), {
    summarize: (h) => [h.health ?? 'no health check', ...h.smoke].join('; '),
  });
  if (!monitor) return;
  const m = c.target.monitor;
  // runs from before the input check took the longer of the two
  const window =
    c.window ??
    (c.input.monitorWindow && parseDuration(c.input.monitorWindow) > parseDuration(m.window)
      ? c.input.monitorWindow
      : m.window);
  await c.rb.step('monitor', () => monitorWindow(c.ref, { ...m, window }), {
    summarize: (r) => `${r.looks} looks over ${window}: ${r.errors} error lines, ${r.unhealthyLooks} unhealthy`,
  });
}

export async function forensicCopy(c: Context): Promise<void> {
  await c.rb.step('forensic copy', () => long.takeSqliteForensicCopy({ ...c.ref, tag: c.tag }), {
    summarize: (f) => `${f.files.map((x) => `${x.name} ${formatBytes(x.bytes)}`).join(', ')} → ${f.dir}`,
  });
  c.report.forensicCopy = `${c.target.forensicsDir}/${c.tag}`;
}

export async function validateLive(c: Context): Promise<void> {
  await c.rb.step('validate', () => long.validateLiveDatabase({ ...c.ref, integrity: 'full', mustPass: true }), {
    summarize: (v) =>
      `integrity ${v.integrity}, ${v.tables} tables, ${v.indexes} indexes, ${v.foreignKeyViolations} FK violations`,
  });
}
