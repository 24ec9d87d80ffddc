import type { Command } from 'commander';
import { userInfo } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import type { Client, ScheduleHandle } from '@temporalio/client';
import { loadConfig } from '../../worker/config.js';
import { withClient } from '../errors.js';
import { parseInput } from '../input.js';
import {
  CATCHUP_WINDOW,
  DEFAULT_TIMEZONE,
  createRunbookSchedule,
  describeSchedule,
  formatSchedules,
  listSchedules,
  schedulableRunbook,
  schedulableRunbooks,
  withSchedule,
} from '../schedules.js';

interface CreateOptions {
  env: string;
  target: string;
  cron?: string;
  timezone: string;
  id?: string;
  requester?: string;
  inputJson?: string;
  paused?: boolean;
  note?: string;
}

const operator = () => process.env.USER ?? userInfo().username;

/** Runs `fn` on the schedule `id` and prints what it says; an unknown id is a one-line error (exit 1). */
const onSchedule = (id: string, fn: (handle: ScheduleHandle, client: Client) => Promise<string>) =>
  withClient((client) => withSchedule(id, async () => console.log(await fn(client.schedule.getHandle(id), client))));

/**
 * After a trigger: what the schedule did (started a run, or skipped it under SKIP), within a few seconds. Two
 * triggers at once can both be counted before either looks: then it says both.
 */
async function triggered(client: Client, id: string, before: { taken: number; skipped: number }): Promise<string> {
  for (let i = 0; i < 40; i++) {
    const row = await describeSchedule(client, id);
    const started = row.actionsTaken > before.taken && row.lastRun ? `started ${row.lastRun.workflowId}` : undefined;
    const skipped = row.skippedOverlap - before.skipped;
    if (started && skipped > 0) return `${started}; ${skipped} skipped while it runs (overlap policy ${row.overlap})`;
    if (started) return `${started} (run ${row.lastRun!.runId})`;
    if (skipped > 0)
      return `skipped: ${row.running.join(', ') || 'its previous run'} is still running (overlap policy ${row.overlap})`;
    await delay(250);
  }
  return 'triggered; the schedule has not acted on it yet (see runbook schedule list)';
}

/** `runbook schedule create|list|pause|unpause|trigger|delete`: runbooks that run unattended, as Temporal Schedules. */
export function registerScheduleCommands(program: Command): void {
  const schedule = program
    .command('schedule')
    .description(
      `unattended runbooks (${schedulableRunbooks().join(', ')}) as Temporal Schedules (Web UI: Schedules; temporal schedule …)`,
    );

  schedule
    .command('create <runbook>')
    .description('validate the input and environment, then create the schedule (overlapping runs are skipped)')
    .requiredOption('--env <name>', 'environment (environments/<name>.yaml)')
    .requiredOption('--target <name>', 'target in the environment')
    .option('--cron <expr>', 'when (5 fields; default: the runbook\'s, e.g. "0 2 * * *" for sqlite-backup)')
    .option('--timezone <tz>', 'time zone of the cron expression', DEFAULT_TIMEZONE)
    .option('--id <id>', 'schedule id (default: <runbook>--<env>--<target>); runs are <id>-<time>')
    .option('--requester <name>', 'requester of every run (default: schedule:<id>)')
    .option('--input-json <json|@file>', "more of the runbook's input, as JSON (validated now)")
    .option('--paused', 'create it paused')
    .option('--note <text>', 'the note the Web UI shows (default: what it is)')
    .action(async (name: string, o: CreateOptions) => {
      const def = schedulableRunbook(name);
      const input = await parseInput(o.inputJson, '--input-json');
      const config = loadConfig();
      await withClient(async (client) => {
        const d = await createRunbookSchedule(client, {
          runbook: name,
          environment: o.env,
          target: o.target,
          cron: o.cron,
          timezone: o.timezone,
          id: o.id,
          requester: o.requester,
          input,
          paused: o.paused,
          note: o.note,
          taskQueue: config.taskQueue,
          environmentsDir: config.environmentsDir,
          createdBy: operator(),
        });
        const row = await describeSchedule(client, d.scheduleId);
        console.log(`created schedule ${d.scheduleId}: ${def.schedule.description}`);
        console.log(`  runbook ${name} (${def.workflowType}) on ${o.env}/${o.target}, task queue ${config.taskQueue}`);
        console.log(
          `  cron "${row.cron}" (${row.timezone}); overlap ${row.overlap}; catch-up window ${CATCHUP_WINDOW}`,
        );
        console.log(
          `  ${row.paused ? 'paused' : `next run ${row.nextRun ?? '-'}`}; runs are workflows ${d.scheduleId}-<time>`,
        );
        console.log(`  temporal schedule describe --schedule-id ${d.scheduleId}   (or the Web UI's Schedules page)`);
      });
    });

  schedule
    .command('list')
    .description('every schedule: runbook, env/target, cron, paused, next run, last run and its outcome')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) =>
      withClient(async (client) => {
        const rows = await listSchedules(client);
        console.log(o.json ? JSON.stringify(rows, null, 2) : formatSchedules(rows));
      }),
    );

  schedule
    .command('pause <id>')
    .description('stop taking actions until unpaused (a running run goes on)')
    .option('--note <text>', "why (shown as the schedule's note)")
    .action((id: string, o: { note?: string }) =>
      onSchedule(id, async (handle) => {
        await handle.pause(o.note ?? `paused by ${operator()} (runbook schedule pause)`);
        return `paused ${id}`;
      }),
    );

  schedule
    .command('unpause <id>')
    .description('take actions again')
    .option('--note <text>', 'the new note')
    .action((id: string, o: { note?: string }) =>
      onSchedule(id, async (handle, client) => {
        await handle.unpause(o.note ?? `unpaused by ${operator()} (runbook schedule unpause)`);
        return `unpaused ${id}; next run ${(await describeSchedule(client, id)).nextRun ?? '-'}`;
      }),
    );

  schedule
    .command('trigger <id>')
    .description("run now, under the schedule's overlap policy (skipped while its previous run is still running)")
    .action((id: string) =>
      onSchedule(id, async (handle, client) => {
        const d = await handle.describe();
        // the SDK's default for a trigger is ALLOW_ALL: pass the schedule's own policy
        await handle.trigger(d.policies.overlap);
        const before = { taken: d.info.numActionsTaken, skipped: d.info.numActionsSkippedOverlap };
        return `triggered ${id}: ${await triggered(client, id, before)}`;
      }),
    );

  schedule
    .command('delete <id>')
    .description('delete the schedule (its runs, past and running, stay)')
    .action((id: string) =>
      onSchedule(id, async (handle) => {
        await handle.delete();
        return `deleted schedule ${id}`;
      }),
    );
}
