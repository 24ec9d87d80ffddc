import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleDescription,
} from '@temporalio/client';
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { RUNBOOKS, defaultWorkflowId, type RunbookDefinition, type RunbookSchedule } from '../shared/runbooks.js';
import { CliError } from './errors.js';
import { runbookSearchAttributes, validateRunbookInput } from './input.js';

// Runbooks that run unattended (daily backups, quarterly drills) as Temporal Schedules: server-side objects,
// visible in the Web UI's Schedules page and to `temporal schedule list|describe`, managed by `runbook schedule`.

/** A missed action (server down) is still taken within this window, later ones are dropped. */
export const CATCHUP_WINDOW = '1h';
export const DEFAULT_TIMEZONE = 'UTC';

/** What `runbook schedule create` (or a caller with a client) asks for. */
export interface RunbookScheduleRequest {
  runbook: string;
  environment: string;
  target: string;
  /** default: the runbook's schedule.defaultCron */
  cron?: string;
  timezone?: string;
  /** default: <runbook>--<environment>--<target>; every run's workflow id is this plus the time */
  id?: string;
  /** default: schedule:<id> */
  requester?: string;
  /** more of the runbook's input (validated with its schema) */
  input?: Record<string, unknown>;
  paused?: boolean;
  note?: string;
  /** the task queue the workers poll */
  taskQueue: string;
  environmentsDir: string;
  /** who created it (the memo) */
  createdBy?: string;
}

/** What our schedules carry in their memo (the Web UI and `temporal schedule describe` show it). */
export interface RunbookScheduleMemo {
  runbook: string;
  environment: string;
  target: string;
  cron: string;
  timezone: string;
  description: string;
  createdBy?: string;
}

/** One schedule as `runbook schedule list` shows it. */
export interface ScheduleRow {
  id: string;
  runbook?: string;
  environment?: string;
  target?: string;
  cron?: string;
  timezone?: string;
  workflowType: string;
  overlap: string;
  paused: boolean;
  note?: string;
  nextRun?: string;
  actionsTaken: number;
  skippedOverlap: number;
  running: string[];
  lastRun?: { at: string; workflowId: string; runId: string; status: string; outcome?: string };
}

const SCHEDULE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/;
const outcomeKey = defineSearchAttributeKey('Outcome', SearchAttributeType.KEYWORD);

export const schedulableRunbooks = (): string[] =>
  Object.entries(RUNBOOKS)
    .filter(([, def]) => def.schedule)
    .map(([name]) => name);

/** The runbook's definition, if it may run unattended; a usage error naming the ones that may otherwise. */
export function schedulableRunbook(name: string): RunbookDefinition & { schedule: RunbookSchedule } {
  const def = RUNBOOKS[name];
  if (!def?.schedule)
    throw new CliError(
      `${def ? `"${name}" cannot run unattended` : `unknown runbook "${name}"`}: only these can be scheduled: ${schedulableRunbooks().join(', ')}`,
    );
  return { ...def, schedule: def.schedule };
}

/** ScheduleNotFoundError as a one-line error (exit 1), like an unknown workflow id. */
export async function withSchedule<T>(id: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) throw new CliError(`no schedule with id "${id}"`, 1);
    throw err;
  }
}

/**
 * Validates the runbook's input (schema and environment, as `runbook start` does) and creates the schedule:
 * its action starts the runbook's workflow with that input and the search attributes `runbook start` sets;
 * overlapping runs are skipped, not stacked; a missed run is caught up within an hour. Nothing is created when
 * anything is wrong (input, environment, cron, time zone).
 */
export async function createRunbookSchedule(client: Client, r: RunbookScheduleRequest): Promise<ScheduleDescription> {
  const def = schedulableRunbook(r.runbook);
  const id = r.id ?? defaultWorkflowId(r.runbook, r.environment, r.target);
  if (!SCHEDULE_ID.test(id))
    throw new CliError(`--id: "${id}" must be letters, digits, ".", "_", ":" or "-" (at most 200)`);
  const cron = r.cron ?? def.schedule.defaultCron;
  const timezone = r.timezone ?? DEFAULT_TIMEZONE;
  const input = {
    ...r.input,
    environment: r.environment,
    target: r.target,
    requester: r.requester ?? r.input?.requester ?? `schedule:${id}`,
    reason: r.input?.reason ?? `scheduled ${r.runbook}`,
  };
  await validateRunbookInput(def, input, r.environmentsDir);
  const searchAttributes = runbookSearchAttributes(r.runbook, r.environment, r.target);
  const memo: RunbookScheduleMemo = {
    runbook: r.runbook,
    environment: r.environment,
    target: r.target,
    cron,
    timezone,
    description: def.schedule.description,
    ...(r.createdBy ? { createdBy: r.createdBy } : {}),
  };
  try {
    const handle = await client.schedule.create({
      scheduleId: id,
      spec: { cronExpressions: [cron], timezone },
      action: {
        type: 'startWorkflow',
        workflowType: def.workflowType,
        taskQueue: r.taskQueue,
        workflowId: id,
        args: [input],
        typedSearchAttributes: searchAttributes,
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: CATCHUP_WINDOW },
      memo: memo as unknown as Record<string, unknown>,
      typedSearchAttributes: searchAttributes,
      state: {
        paused: r.paused ?? false,
        note: r.note ?? `${def.schedule.description}: ${r.runbook} on ${r.environment}/${r.target} (runbook schedule)`,
      },
    });
    return await handle.describe();
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning)
      throw new CliError(`schedule "${id}" already exists (delete it first, or give another --id)`, 1);
    // the server's "Invalid schedule spec" (a cron expression or time zone it cannot read)
    if (err instanceof TypeError)
      throw new CliError(`invalid schedule (cron "${cron}", time zone ${timezone}): ${err.message}`);
    throw err;
  }
}

const iso = (d: Date | undefined) => d?.toISOString().replace(/\.000Z$/, 'Z');

/** A schedule as a row: its memo (ours) or its action (any other), its state and its last run's outcome. */
export async function describeSchedule(client: Client, id: string): Promise<ScheduleRow> {
  const d = await client.schedule.getHandle(id).describe();
  const memo = (d.memo ?? {}) as Partial<RunbookScheduleMemo>;
  const input = (d.action.args?.[0] ?? {}) as { environment?: string; target?: string };
  const runbook =
    memo.runbook ?? Object.entries(RUNBOOKS).find(([, def]) => def.workflowType === d.action.workflowType)?.[0];
  const last = d.info.recentActions.at(-1);
  let lastRun: ScheduleRow['lastRun'];
  if (last) {
    const { workflowId, firstExecutionRunId: runId } = last.action.workflow;
    const run = await client.workflow
      .getHandle(workflowId, runId)
      .describe()
      .catch(() => undefined);
    lastRun = {
      at: iso(last.takenAt)!,
      workflowId,
      runId,
      status: run?.status.name ?? 'UNKNOWN',
      outcome: run?.typedSearchAttributes.get(outcomeKey),
    };
  }
  return {
    id,
    runbook,
    environment: memo.environment ?? input.environment,
    target: memo.target ?? input.target,
    cron: memo.cron,
    timezone: memo.timezone ?? d.spec.timezone,
    workflowType: d.action.workflowType,
    overlap: d.policies.overlap ?? 'SKIP',
    paused: d.state.paused,
    note: d.state.note,
    nextRun: iso(d.info.nextActionTimes[0]),
    actionsTaken: d.info.numActionsTaken,
    skippedOverlap: d.info.numActionsSkippedOverlap,
    running: d.info.runningActions.map((a) => a.workflow.workflowId),
    lastRun,
  };
}

/** Every schedule of the namespace (the listing is eventually consistent; each is then described as it is now). */
export async function listSchedules(client: Client): Promise<ScheduleRow[]> {
  const ids: string[] = [];
  for await (const s of client.schedule.list()) ids.push(s.scheduleId);
  const rows: ScheduleRow[] = [];
  for (const id of ids.sort()) {
    // deleted since it was listed: not there any more
    const row = await describeSchedule(client, id).catch((err: unknown) => {
      if (err instanceof ScheduleNotFoundError) return undefined;
      throw err;
    });
    if (row) rows.push(row);
  }
  return rows;
}

/** The table of `runbook schedule list`. */
export function formatSchedules(rows: ScheduleRow[]): string {
  if (rows.length === 0) return 'no schedules';
  const table = [
    ['id', 'runbook', 'env/target', 'cron', 'paused', 'next run', 'last run'],
    ...rows.map((r) => [
      r.id,
      r.runbook ?? r.workflowType,
      r.environment ? `${r.environment}/${r.target ?? '?'}` : '-',
      r.cron ? `${r.cron} (${r.timezone ?? 'UTC'})` : '-',
      r.paused ? 'yes' : 'no',
      r.paused ? '-' : (r.nextRun ?? '-'),
      r.lastRun
        ? `${r.lastRun.at} ${r.lastRun.outcome ?? r.lastRun.status.toLowerCase()}${r.skippedOverlap ? ` (${r.skippedOverlap} skipped: overlap)` : ''}`
        : 'never',
    ]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  return table
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
