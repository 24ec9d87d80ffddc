import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../src/activities/digest.js';
import { ErrorType } from '../src/shared/constants.js';
import { abortSignal } from '../src/shared/messages.js';
import { runbook, temporal } from './support/cli.js';
import type { RunbookResult } from '../src/shared/types.js';
import { Harness } from './support/harness.js';
import { saveHistory } from './support/histories.js';
import { approve, outcomeOf, startReplay, writeGapLog, type ReplayResults } from './support/job-replay.js';
import { jobTarget, type JobTestTarget } from './support/migration.js';
import { until } from './support/wait.js';
import { replayTag } from '../src/activities/migration/jobs/spool-names.js';

const h = new Harness();
beforeAll(async () => {
  await h.start();
});
afterAll(async () => {
  await h.close();
});

const HOUR = 3600_000;
const replayOf = (r: RunbookResult) => r.results?.replay as ReplayResults;
const extraOf = (r: RunbookResult) =>
  r.extra as {
    plan: { total: number; counts: Record<string, number>; sha256: string; path: string };
    replay: { requeued: number; already: number; vanished: number; vanishedIds: string[]; generations: number };
    drain: { drained: boolean; completed: number; failed: number; pending: number };
    keyPrefix: string;
  };

/** failed + stuck + gap jobs (and completed ones that are fine); returns the ids that should be replayed */
async function seedMissedJobs(t: JobTestTarget) {
  const failed = await t.seedJobs(12, 'failed', { prefix: 'f', ageMs: HOUR });
  const stuck = await t.seedJobs(4, 'processing', { prefix: 's', ageMs: 2 * HOUR });
  await t.seedJobs(3, 'processing', { prefix: 'busy', ageMs: 60_000 }); // processing, not stuck
  const gap = await t.seedJobs(3, 'completed', { prefix: 'g' });
  const dual = await t.seedJobs(2, 'completed', { prefix: 'd' });
  if (!t.table) writeGapLog(t.logDir, gap, dual);
  return { failed, stuck, gap: t.table ? [] : [...gap, ...dual] };
}

/** Every replayed job finished exactly once with this run's key (the processor's own log says so). */
function expectExactlyOnce(t: JobTestTarget, ids: string[]) {
  expect(t.duplicates()).toBe(0);
  const completions = t.completions();
  for (const id of ids) expect(completions.get(id), id).toBe(1);
}

/** The processor's last "config loaded" line names this primary backend. */
function expectRunningOn(t: JobTestTarget, backend: string) {
  const loaded = t.logLines().filter((l) => l.includes('INFO Backend primary='));
  expect(loaded.at(-1)).toContain(`primary=${backend}`);
}

async function replayMissedJobs(t: JobTestTarget, name: string) {
  const want = await seedMissedJobs(t);
  const all = [...want.failed, ...want.stuck, ...want.gap];
  const ini = t.iniBytes();
  expect(t.readIni()).toMatch(/^primary = heavydb$/m);
  const handle = await startReplay(h, t, { kinds: ['failed', 'stuck', 'gap'], backend: 'parquet' });
  const waiting = await approve(h, handle);
  expect(waiting.plan!.changes).toContainEqual({ item: 'data_backend.primary', from: 'heavydb', to: 'parquet' });
  const details = waiting.plan!.details as { counts: Record<string, number>; sample: Array<{ id: string }> };
  expect(details.counts).toMatchObject({ failed: 12, stuck: 4, gap: want.gap.length });
  const result = await outcomeOf(handle);
  expect(result.outcome, result.error).toBe('succeeded');
  const extra = extraOf(result);
  expect(extra.replay).toMatchObject({ requeued: all.length, already: 0, vanished: 0 });
  expect(extra.drain).toMatchObject({ drained: true, completed: all.length, failed: 0, pending: 0 });
  expect(replayOf(result)).toMatchObject({ requeued: all.length, remaining: 0, paused: false });
  expect(await t.counts()).toMatchObject({ queue: 0, failed: 0, processing: 3 });
  expectExactlyOnce(t, all);
  // every replayed job carries the run's key (its tag, in the file's name) into its output
  const tags = new Set(all.map((id) => `Completed job ${id} replay=${replayTag(`${extra.keyPrefix}/${id}`)}`));
  const keys = t.logLines().filter((l) => {
    const m = / Completed job (\S+) .* replay=(\S+)$/.exec(l);
    return m !== null && tags.has(`Completed job ${m[1]} replay=${m[2]}`);
  });
  expect(keys).toHaveLength(all.length);
  // replayed on the override's backend; the INI file is byte-identical again afterwards
  expect(keys.every((l) => l.includes('backend=parquet'))).toBe(true);
  expect(t.iniBytes().equals(ini)).toBe(true);
  expect(result.steps.filter((s) => s.name.match(/override|restart|healthy|restore/)).map((s) => s.status)).toEqual([
    'succeeded',
    'succeeded',
    'succeeded',
    'succeeded',
  ]);
  await t.waitHealthy();
  expectRunningOn(t, 'heavydb');
  await saveHistory(h.client, handle.workflowId, name, 'job-replay');
  return { result, all };
}

describe('job-replay', () => {
  it('replays failed, stuck and log-gap jobs exactly once on the override backend, then restores it byte for byte; busy and finished jobs are left alone', async () => {
    const t = await jobTarget(h);
    await replayMissedJobs(t, 'approve-path');
  });

  it('the Postgres job source passes the same replay', async () => {
    const t = await jobTarget(h, { postgres: true });
    await replayMissedJobs(t, 'postgres');
  });

  it('pause stops new batches and resume goes on (runbook pause; temporal workflow signal --name resume)', async () => {
    const t = await jobTarget(h, { replay: { batch: 5, concurrency: 1, pace: '300ms' } });
    const ids = await t.seedJobs(60, 'failed', { prefix: 'p' });
    const handle = await startReplay(h, t, { kinds: ['failed'] });
    await approve(h, handle);
    await h.waitFor(handle, (s) => ((s.results?.replay as ReplayResults | undefined)?.requeued ?? 0) >= 10);
    const paused1 = await runbook(['pause', handle.workflowId, '--by', 'rita', '--reason', 'look first'], h.env());
    expect(paused1.stdout + paused1.stderr).toContain(`pause sent to ${handle.workflowId}`);
    await h.waitFor(handle, (s) => (s.results?.replay as ReplayResults).paused);
    // settled: the requeue child has the pause, no batch in flight, and the run shows the last batch's progress
    const child = h.client.workflow.getHandle(`${handle.workflowId}--requeue`);
    const childEvents = async () => (await child.fetchHistory()).events!;
    const pausedAt = async () =>
      (await childEvents()).findIndex((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'pause');
    const requeuedNow = async () => ((await h.waitFor(handle, () => true)).results!.replay as ReplayResults).requeued;
    await until(
      'the pause settled in the requeue child',
      async () =>
        (await pausedAt()) >= 0 &&
        ((await child.describe()).raw.pendingActivities ?? []).length === 0 &&
        (await requeuedNow()) === 60 - (await t.counts()).failed,
      60_000,
    );
    const now = await requeuedNow();
    expect(now).toBeLessThan(60);
    // while paused no batch is scheduled: none after the pause in the child's history, nothing more requeued (a
    // running lane would schedule its next batch 300 ms after the last)
    await new Promise((r) => setTimeout(r, 1500));
    const events = await childEvents();
    expect(events.slice(await pausedAt()).filter((e) => e.activityTaskScheduledEventAttributes)).toEqual([]);
    expect(await requeuedNow()).toBe(now);
    expect((await t.counts()).failed).toBe(60 - now);
    const resumed = await temporal(
      ['workflow', 'signal', '--workflow-id', handle.workflowId, '--name', 'resume', '--input', '{"by":"rita"}'],
      h.address,
    );
    expect(resumed.code, resumed.stderr).toBe(0);
    const result = await outcomeOf(handle);
    expect(result.outcome, result.error).toBe('succeeded');
    expect(extraOf(result).replay.requeued).toBe(60);
    expectExactlyOnce(t, ids);
    await saveHistory(h.client, handle.workflowId, 'pause-resume', 'job-replay');
  });

  it('abort during the replay: the override is undone (INI byte-identical, restarted on the old backend)', async () => {
    const t = await jobTarget(h, { replay: { batch: 5, concurrency: 1, pace: '300ms' } });
    await t.seedJobs(60, 'failed', { prefix: 'a' });
    const ini = t.iniBytes();
    const handle = await startReplay(h, t, { kinds: ['failed'], backend: 'parquet' });
    await approve(h, handle);
    await h.waitFor(handle, (s) => ((s.results?.replay as ReplayResults | undefined)?.requeued ?? 0) >= 5);
    expect(t.readIni()).toMatch(/^primary = parquet$/m);
    await handle.signal(abortSignal, { by: 'carol', reason: 'wrong backend' });
    const result = await outcomeOf(handle);
    expect(result.outcome).toBe('aborted');
    expect(result.compensations.map((c) => [c.step, c.status])).toContainEqual(['override backend', 'succeeded']);
    expect(t.iniBytes().equals(ini)).toBe(true);
    await t.waitHealthy();
    expectRunningOn(t, 'heavydb');
    // what was requeued stays requeued (each once); the rest is still failed
    expect(t.duplicates()).toBe(0);
    await saveHistory(h.client, handle.workflowId, 'abort-restores-override', 'job-replay');
  });

  it('a job that vanishes between detection and replay is reported, not fatal', async () => {
    const t = await jobTarget(h);
    const ids = await t.seedJobs(10, 'failed', { prefix: 'v' });
    const handle = await startReplay(h, t, { kinds: ['failed'] });
    await h.waitForApproval(handle);
    const gone = [ids[2]!, ids[7]!];
    for (const id of gone) rmSync(join(t.root, 'jobs', 'failed', `${id}.json`));
    await approve(h, handle);
    const result = await outcomeOf(handle);
    expect(result.outcome, result.error).toBe('succeeded');
    expect(extraOf(result).replay).toMatchObject({ requeued: 8, vanished: 2, vanishedIds: gone });
    expect(replayOf(result)).toMatchObject({ vanished: 2, vanishedIds: gone });
    expectExactlyOnce(
      t,
      ids.filter((id) => !gone.includes(id)),
    );
    await saveHistory(h.client, handle.workflowId, 'vanished-job', 'job-replay');
  });

  it('a job file that is not JSON is InvalidInput naming it, before anything changes', async () => {
    const t = await jobTarget(h, { start: false });
    await t.seedJobs(5, 'failed', { prefix: 'ok' });
    const [bad] = await t.seedJobs(1, 'failed', { prefix: 'bad', notJson: true });
    const before = filesBelow(t.root);
    const handle = await startReplay(h, t, { kinds: ['failed'] });
    const result = await outcomeOf(handle);
    expect(result.outcome).toBe('failed');
    expect(result.error).toContain(join('failed', `${bad}.json`));
    expect(result.steps.find((s) => s.name === 'approval')?.status).toBe('skipped');
    await expect(handle.result()).rejects.toMatchObject({ cause: { type: ErrorType.InvalidInput } });
    expect(filesBelow(t.root)).toEqual(before);
  });

  it('an unknown backend override is InvalidInput naming backend, before anything changes', async () => {
    const t = await jobTarget(h, { start: false });
    await t.seedJobs(3, 'failed');
    const before = filesBelow(t.root);
    const handle = await startReplay(h, t, { backend: 'oracle' });
    const result = await outcomeOf(handle);
    expect(result.outcome).toBe('failed');
    expect(result.error).toMatch(/backend: "oracle" is not a backend of this target \(heavydb, parquet\)/);
    await expect(handle.result()).rejects.toMatchObject({ cause: { type: ErrorType.InvalidInput } });
    expect(filesBelow(t.root)).toEqual(before);
  });
});

/** Every file below `dir` by path, as its digest (the run's own lock and evidence are elsewhere). */
export function filesBelow(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, entry);
    if (!statSync(path).isFile()) continue;
    out[relative(dir, path)] = `${sha256(readFileSync(path))} ${statSync(path).mtimeMs}`;
  }
  return out;
}
