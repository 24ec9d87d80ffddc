import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScheduleNotFoundError } from '@temporalio/client';
import { SearchAttributeType, defineSearchAttributeKey, type TypedSearchAttributes } from '@temporalio/common';
import { createRunbookSchedule, type ScheduleRow } from '../src/cli/schedules.js';
import type { RunbookResult } from '../src/shared/types.js';
import type { DrillReport } from '../src/workflows/sqlite-drill.js';
import { runbook } from './support/cli.js';
import { Harness } from './support/harness.js';
import { deleteSchedules } from './support/schedules.js';
import { sqliteTarget, startRunbook, type SqliteTestTarget } from './support/sqlite.js';

/**
 * `runbook schedule …`: unattended runbooks as Temporal Schedules on the suite's real server, their runs real
 * backups and drills of demo SQLite applications.
 */
const h = new Harness();
const created: string[] = [];
beforeAll(() => h.start());
afterAll(async () => {
  await deleteSchedules(h.client, created);
  await h.close();
});

const cli = (...args: string[]) => runbook(['schedule', ...args], h.env());
const attr = (name: string) => defineSearchAttributeKey(name, SearchAttributeType.KEYWORD);
const backupFiles = (t: SqliteTestTarget) => readdirSync(t.backupsDir).filter((f) => f.endsWith('.db.gz'));
const describeSchedule = (id: string) => h.client.schedule.getHandle(id).describe();

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** `runbook schedule list --json`, the row of `id` (undefined when it is not listed). */
async function listed(id: string): Promise<ScheduleRow | undefined> {
  const r = await cli('list', '--json');
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as ScheduleRow[]).find((row) => row.id === id);
}

/** The run a trigger started, from the schedule's recent actions. */
async function lastAction(id: string) {
  const d = await describeSchedule(id);
  return d.info.recentActions.at(-1)!.action.workflow;
}

describe('runbook schedule: backups and drills as Temporal Schedules', () => {
  it('creates a daily sqlite-backup schedule (validated, SKIP, 1 h catch-up), lists it, triggers a real backup, pauses, unpauses and deletes it', async () => {
    const t = await sqliteTarget(h, { seedBytes: 2_000_000, start: false });
    const id = `sqlite-backup--${t.envName}--app`;
    const made = await cli('create', 'sqlite-backup', '--env', t.envName, '--target', 'app');
    created.push(id);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toContain(`created schedule ${id}: daily SQLite backup (seed §3.1)`);
    expect(made.stdout).toContain('cron "0 2 * * *" (UTC); overlap SKIP; catch-up window 1h');

    // the server-side object: what `temporal schedule describe` and the Web UI show
    const d = await describeSchedule(id);
    expect(d.action).toMatchObject({
      type: 'startWorkflow',
      workflowType: 'sqliteBackup',
      taskQueue: h.taskQueue,
      workflowId: id,
      args: [{ environment: t.envName, target: 'app', requester: `schedule:${id}`, reason: 'scheduled sqlite-backup' }],
    });
    expect((d.action.typedSearchAttributes as TypedSearchAttributes).get(attr('RunbookName'))).toBe('sqlite-backup');
    expect((d.action.typedSearchAttributes as TypedSearchAttributes).get(attr('Environment'))).toBe(t.envName);
    expect((d.action.typedSearchAttributes as TypedSearchAttributes).get(attr('Target'))).toBe('app');
    expect(d.policies).toMatchObject({ overlap: 'SKIP', catchupWindow: 3_600_000 });
    expect(d.memo).toMatchObject({
      runbook: 'sqlite-backup',
      environment: t.envName,
      target: 'app',
      cron: '0 2 * * *',
      timezone: 'UTC',
      description: 'daily SQLite backup (seed §3.1)',
    });
    expect(d.spec.timezone).toBe('UTC');
    expect(d.state).toMatchObject({
      paused: false,
      note: `daily SQLite backup (seed §3.1): sqlite-backup on ${t.envName}/app (runbook schedule)`,
    });
    const next = d.info.nextActionTimes[0]!;
    expect([next.getUTCHours(), next.getUTCMinutes(), next.getUTCSeconds()]).toEqual([2, 0, 0]);
    expect(next.getTime() - Date.now()).toBeGreaterThan(0);
    expect(next.getTime() - Date.now()).toBeLessThanOrEqual(86_400_000);

    // a second create with the same id changes nothing
    const again = await cli('create', 'sqlite-backup', '--env', t.envName, '--target', 'app', '--cron', '0 4 * * *');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`runbook: schedule "${id}" already exists`);
    expect((await describeSchedule(id)).memo?.cron).toBe('0 2 * * *');

    // list: JSON and the table
    const row = await eventually('listed', () => listed(id));
    expect(row).toMatchObject({
      runbook: 'sqlite-backup',
      environment: t.envName,
      target: 'app',
      cron: '0 2 * * *',
      timezone: 'UTC',
      paused: false,
      nextRun: next.toISOString().replace('.000Z', 'Z'),
      actionsTaken: 0,
    });
    expect(row.lastRun).toBeUndefined();
    const table = await cli('list');
    expect(table.stdout).toMatch(/^id\s+runbook\s+env\/target\s+cron\s+paused\s+next run\s+last run$/m);
    expect(table.stdout).toMatch(
      new RegExp(
        `^${id}\\s+sqlite-backup\\s+${t.envName}/app\\s+0 2 \\* \\* \\* \\(UTC\\)\\s+no\\s+\\S+Z\\s+never$`,
        'm',
      ),
    );

    // trigger: a real backup now, as the schedule would start it
    const trig = await cli('trigger', id);
    expect(trig.code, trig.stderr).toBe(0);
    const run = await lastAction(id);
    expect(run.workflowId).toMatch(new RegExp(`^${id}-\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z$`));
    expect(trig.stdout.trim()).toBe(`triggered ${id}: started ${run.workflowId} (run ${run.firstExecutionRunId})`);
    const result = (await h.client.workflow.getHandle(run.workflowId).result()) as RunbookResult;
    expect(result).toMatchObject({
      outcome: 'succeeded',
      runbook: 'sqlite-backup',
      environment: t.envName,
      target: 'app',
      requester: `schedule:${id}`,
      reason: 'scheduled sqlite-backup',
    });
    expect(backupFiles(t)).toHaveLength(1);
    const wd = await h.client.workflow.getHandle(run.workflowId).describe();
    expect(wd.typedSearchAttributes.get(attr('RunbookName'))).toBe('sqlite-backup');
    expect(wd.typedSearchAttributes.get(attr('Outcome'))).toBe('succeeded');
    expect(await listed(id)).toMatchObject({
      actionsTaken: 1,
      lastRun: {
        workflowId: run.workflowId,
        runId: run.firstExecutionRunId,
        status: 'COMPLETED',
        outcome: 'succeeded',
      },
    });
    expect((await cli('list')).stdout).toMatch(new RegExp(`^${id}\\s.*\\s\\S+Z succeeded$`, 'm'));

    // pause and unpause, as describe (and the Web UI) sees them
    const paused = await cli('pause', id, '--note', 'disk maintenance');
    expect([paused.code, paused.stdout.trim()]).toEqual([0, `paused ${id}`]);
    expect((await describeSchedule(id)).state).toMatchObject({ paused: true, note: 'disk maintenance' });
    expect(await listed(id)).toMatchObject({ paused: true, note: 'disk maintenance' });
    expect((await cli('list')).stdout).toMatch(new RegExp(`^${id}\\s.*\\(UTC\\)\\s+yes\\s+-\\s`, 'm'));
    const unpaused = await cli('unpause', id);
    expect(unpaused.code, unpaused.stderr).toBe(0);
    expect(unpaused.stdout.trim()).toMatch(new RegExp(`^unpaused ${id}; next run \\S+T02:00:00Z$`));
    expect((await describeSchedule(id)).state.paused).toBe(false);

    // delete: gone from the server and the list; its run stays
    const deleted = await cli('delete', id);
    expect([deleted.code, deleted.stdout.trim()]).toEqual([0, `deleted schedule ${id}`]);
    await expect(describeSchedule(id)).rejects.toBeInstanceOf(ScheduleNotFoundError);
    await eventually('unlisted', async () => {
      for await (const s of h.client.schedule.list()) if (s.scheduleId === id) return undefined;
      return true;
    });
    expect((await h.client.workflow.getHandle(run.workflowId).describe()).status.name).toBe('COMPLETED');
    for (const verb of ['pause', 'unpause', 'trigger', 'delete']) {
      const r = await cli(verb, id);
      expect([verb, r.code, r.stderr.trim()]).toEqual([verb, 1, `runbook: no schedule with id "${id}"`]);
    }
  }, 240_000);

  it('creates a quarterly sqlite-drill schedule through the client (paused, own id and requester); a trigger runs a real drill', async () => {
    const t = await sqliteTarget(h, { seedBytes: 2_000_000, start: false });
    await (await startRunbook(h, 'sqlite-backup', { environment: t.envName })).result();
    const id = `quarterly-drill-${t.envName}`;
    const d = await createRunbookSchedule(h.client, {
      runbook: 'sqlite-drill',
      environment: t.envName,
      target: 'app',
      id,
      paused: true,
      requester: 'dr-team',
      taskQueue: h.taskQueue,
      environmentsDir: h.environmentsDir,
    });
    created.push(id);
    expect(d.scheduleId).toBe(id);
    expect(d.state.paused).toBe(true);
    expect(d.action).toMatchObject({
      workflowType: 'sqliteDrill',
      workflowId: id,
      args: [{ environment: t.envName, target: 'app', requester: 'dr-team', reason: 'scheduled sqlite-drill' }],
    });
    expect(d.memo).toMatchObject({ runbook: 'sqlite-drill', cron: '0 3 1 1,4,7,10 *', timezone: 'UTC' });
    const row = await eventually('listed', () => listed(id));
    expect(row).toMatchObject({ runbook: 'sqlite-drill', cron: '0 3 1 1,4,7,10 *', paused: true });
    expect((await cli('list')).stdout).toMatch(
      new RegExp(
        `^${id}\\s+sqlite-drill\\s+${t.envName}/app\\s+0 3 1 1,4,7,10 \\* \\(UTC\\)\\s+yes\\s+-\\s+never$`,
        'm',
      ),
    );

    // a trigger runs it now, paused or not
    const trig = await cli('trigger', id);
    expect(trig.code, trig.stderr).toBe(0);
    expect(trig.stdout).toMatch(new RegExp(`^triggered ${id}: started ${id}-\\S+Z \\(run \\S+\\)$`, 'm'));
    const run = await lastAction(id);
    const result = (await h.client.workflow.getHandle(run.workflowId).result()) as RunbookResult;
    expect(result).toMatchObject({ outcome: 'succeeded', runbook: 'sqlite-drill', requester: 'dr-team' });
    expect(result.extra as unknown as DrillReport).toMatchObject({ withinTarget: true, validation: { ok: true } });

    // unpaused, its next run is the first of a quarter's first month at 03:00 UTC
    await h.client.schedule.getHandle(id).unpause();
    const next = (await describeSchedule(id)).info.nextActionTimes[0]!;
    expect([next.getUTCDate(), next.getUTCHours(), next.getUTCMinutes()]).toEqual([1, 3, 0]);
    expect([0, 3, 6, 9]).toContain(next.getUTCMonth());
    expect(next.getTime() - Date.now()).toBeLessThanOrEqual(92 * 86_400_000);
  });

  it('overlapping backups are skipped, not stacked: two triggers while a large backup runs make one run and one backup', async () => {
    const t = await sqliteTarget(h, { seedBytes: 150_000_000, start: false });
    const id = `overlap-${t.envName}`;
    await createRunbookSchedule(h.client, {
      runbook: 'sqlite-backup',
      environment: t.envName,
      target: 'app',
      id,
      taskQueue: h.taskQueue,
      environmentsDir: h.environmentsDir,
    });
    created.push(id);
    // two operators trigger it at once, while a backup of 150 MB takes a few seconds
    const both = await Promise.all([cli('trigger', id), cli('trigger', id)]);
    expect(both.map((r) => [r.code, r.stderr])).toEqual([
      [0, ''],
      [0, ''],
    ]);
    const run = await lastAction(id);
    const said = both.map((r) => r.stdout).join('');
    expect(said).toContain(`started ${run.workflowId}`);
    expect(said).toMatch(
      new RegExp(
        `skipped: (${run.workflowId}|its previous run) is still running \\(overlap policy SKIP\\)|; 1 skipped while it runs \\(overlap policy SKIP\\)`,
      ),
    );
    const result = (await h.client.workflow.getHandle(run.workflowId).result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    const d = await describeSchedule(id);
    expect(d.info).toMatchObject({ numActionsTaken: 1, numActionsSkippedOverlap: 1, runningActions: [] });
    expect(d.info.recentActions.map((a) => a.action.workflow.workflowId)).toEqual([run.workflowId]);
    // one run of this schedule on the server, one backup on disk
    const runs = await eventually('the run in visibility', async () => {
      const ids: string[] = [];
      for await (const w of h.client.workflow.list({ query: `TemporalScheduledById = '${id}'` }))
        ids.push(w.workflowId);
      return ids.length > 0 ? ids : undefined;
    });
    expect(runs).toEqual([run.workflowId]);
    expect(backupFiles(t)).toHaveLength(1);
    expect(await listed(id)).toMatchObject({ actionsTaken: 1, skippedOverlap: 1 });
  }, 300_000);

  it('refuses what cannot run unattended, a bad cron or time zone, and invalid input: a usage error, nothing created', async () => {
    const t = await sqliteTarget(h, { seedBytes: 0, start: false });
    const env = t.envName;
    const cases: Array<[string[], string, RegExp]> = [
      [
        ['create', 'feature-flag-rollback', '--env', env, '--target', 'app'],
        `feature-flag-rollback--${env}--app`,
        /^runbook: "feature-flag-rollback" cannot run unattended: only these can be scheduled: dual-write-check, sqlite-backup, sqlite-drill, postgres-backup$/,
      ],
      [
        ['create', 'sqlite-restore-all', '--env', env, '--target', 'app'],
        `sqlite-restore-all--${env}--app`,
        /^runbook: unknown runbook "sqlite-restore-all": only these can be scheduled: dual-write-check, sqlite-backup, sqlite-drill, postgres-backup$/,
      ],
      [
        ['create', 'sqlite-backup', '--env', env, '--target', 'app', '--cron', '61 25 * * *'],
        `sqlite-backup--${env}--app`,
        /^runbook: invalid schedule \(cron "61 25 \* \* \*", time zone UTC\): /,
      ],
      [
        ['create', 'sqlite-backup', '--env', env, '--target', 'app', '--cron', 'every night'],
        `sqlite-backup--${env}--app`,
        /^runbook: invalid schedule \(cron "every night", time zone UTC\): /,
      ],
      [
        ['create', 'sqlite-backup', '--env', env, '--target', 'app', '--timezone', 'Mars/Olympus_Mons'],
        `sqlite-backup--${env}--app`,
        /^runbook: invalid schedule \(cron "0 2 \* \* \*", time zone Mars\/Olympus_Mons\): /,
      ],
      [
        ['create', 'sqlite-backup', '--env', env, '--target', 'app', '--input-json', '{"tag":"../x"}'],
        `sqlite-backup--${env}--app`,
        /^runbook: invalid input: tag: must be 1-16 lowercase letters or digits$/,
      ],
      [
        ['create', 'sqlite-drill', '--env', env, '--target', 'app', '--input-json', '{"backup":"/etc/passwd"}'],
        `sqlite-drill--${env}--app`,
        /^runbook: invalid input: backup: must be a backup file name of the target/,
      ],
      [
        ['create', 'sqlite-backup', '--env', env, '--target', 'app', '--input-json', '{"prune":true,'],
        `sqlite-backup--${env}--app`,
        /^runbook: --input-json: malformed JSON: /,
      ],
      [
        ['create', 'sqlite-backup', '--env', `${env}-missing`, '--target', 'app'],
        `sqlite-backup--${env}-missing--app`,
        /^runbook: invalid environment: /,
      ],
      [
        ['create', 'sqlite-backup', '--env', env, '--target', 'nope'],
        `sqlite-backup--${env}--nope`,
        /^runbook: invalid environment: .*nope/,
      ],
    ];
    for (const [args, id, message] of cases) {
      const r = await cli(...args);
      expect([args.join(' '), r.code]).toEqual([args.join(' '), 2]);
      expect(r.stderr.trim()).toMatch(message);
      await expect(describeSchedule(id), id).rejects.toBeInstanceOf(ScheduleNotFoundError);
    }
    // through the client: the same validation, nothing created
    await expect(
      createRunbookSchedule(h.client, {
        runbook: 'sqlite-backup',
        environment: env,
        target: 'app',
        input: { prune: 'yes' },
        taskQueue: h.taskQueue,
        environmentsDir: h.environmentsDir,
      }),
    ).rejects.toThrow(/^invalid input: prune: /);
    await expect(describeSchedule(`sqlite-backup--${env}--app`)).rejects.toBeInstanceOf(ScheduleNotFoundError);
  }, 240_000);
});
