import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectReplayJobs, type DetectInput, type ReplayPlan } from '../src/activities/migration/jobs/detect.js';
import { StoreFactory } from '../src/activities/stores/index.js';
import { Harness } from './support/harness.js';
import { writeGapLog } from './support/job-replay.js';
import { jobTarget, type JobTestTarget } from './support/migration.js';

/** Detection on the demo processor's files at rest (no processor running): what each kind finds, and resuming. */
const h = new Harness();
const stores = new StoreFactory();
beforeAll(() => h.start({ worker: false }));
afterAll(() => h.close());

const HOUR = 3600_000;
const deps = () => ({ environmentsDir: h.environmentsDir, stores, log: pino({ level: 'silent' }) });
const detect = (t: JobTestTarget, o: Partial<DetectInput> = {}, heartbeats?: unknown[], resumeFrom?: unknown) => {
  const env = new MockActivityEnvironment(resumeFrom === undefined ? {} : { heartbeatDetails: resumeFrom });
  env.on('heartbeat', (d: unknown) => heartbeats?.push(structuredClone(d)));
  const input: DetectInput = {
    environment: t.envName,
    target: 'jobs',
    runKey: 'wf/run',
    kinds: ['failed', 'stuck', 'incomplete', 'gap'],
    stuckAfter: '60m',
    dryRun: false,
    ...o,
  };
  return env.run(detectReplayJobs, deps(), input) as Promise<ReplayPlan>;
};
const planIds = (p: ReplayPlan) =>
  readFileSync(p.path!, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { id: string; kind: string; from: string });

describe('job-replay detection', () => {
  it('finds failed jobs since the marker, stuck ones, completed ones without output and log gaps, each once', async () => {
    const t = await jobTarget(h, { start: false });
    const old = await t.seedJobs(2, 'failed', { prefix: 'old', ageMs: 30 * 24 * HOUR }); // before the marker
    const failed = await t.seedJobs(3, 'failed', { prefix: 'f' });
    const stuck = await t.seedJobs(2, 'processing', { prefix: 's', ageMs: 2 * HOUR });
    await t.seedJobs(1, 'processing', { prefix: 'busy', ageMs: 60_000 });
    const [withOutput, without] = await t.seedJobs(2, 'completed', { prefix: 'c' });
    mkdirSync(join(t.outputDir, 'run_20260101_000000'), { recursive: true });
    writeFileSync(join(t.outputDir, 'run_20260101_000000', `optimization_summary_${withOutput}.txt`), 'END\n');
    const [queued] = await t.seedJobs(1, 'queue', { prefix: 'q' });
    // gaps: a completed job with output whose processing never finished in the log, a dual-write failure, a job
    // that is queued now (not a gap), one that exists nowhere, and a failed job already found as failed
    writeGapLog(t.logDir, [withOutput!, queued!, 'ghost-1', failed[0]!], [withOutput!]);
    const plan = await detect(t);
    expect(plan.counts).toEqual({ failed: 3, stuck: 2, incomplete: 1, gap: 1, requested: 0 });
    expect(plan.since.from).toBe('marker');
    expect(plan.missing).toEqual({ count: 1, sample: ['ghost-1'] });
    expect(plan.active).toEqual({ count: 1, sample: [queued] });
    expect(planIds(plan)).toEqual([
      ...failed.map((id) => ({ id, kind: 'failed', from: 'failed', name: `${id}.json` })),
      ...stuck.map((id) => ({ id, kind: 'stuck', from: 'processing', name: `${id}.json` })),
      { id: without, kind: 'incomplete', from: 'completed', name: `${without}.json` },
      { id: withOutput, kind: 'gap', from: 'completed', name: `${withOutput}.json` },
    ]);
    expect(planIds(plan).some((e) => old.includes(e.id))).toBe(false);
    // `since` from the input; the marker missing: all
    expect(
      (await detect(t, { kinds: ['failed'], since: new Date(Date.now() - 40 * 24 * HOUR).toISOString() })).total,
    ).toBe(5);
    rmSync(t.markerFile);
    expect((await detect(t, { kinds: ['failed'] })).since).toEqual({ from: 'all' });
    // the jobs the input names, instead of detection
    const named = await detect(t, { jobs: [without!, 'ghost-2', queued!] });
    expect(named.counts.requested).toBe(1);
    expect(named.missing.sample).toEqual(['ghost-2']);
    // a dry run computes the same digest and writes nothing
    const before = readdirSync(join(t.workDir, 'replay-plans'));
    const dry = await detect(t, { dryRun: true, runKey: 'wf/dry' });
    expect(dry.path).toBeUndefined();
    expect(readdirSync(join(t.workDir, 'replay-plans'))).toEqual(before);
    expect(existsSync(join(t.workDir, 'replay-detect'))).toBe(true);
    expect(readdirSync(join(t.workDir, 'replay-detect'))).toEqual([]);
  });

  it('a retry resumes from the heartbeated cursor and plans exactly what one pass plans', async () => {
    const t = await jobTarget(h, { start: false });
    const ids = await t.seedJobs(2600, 'failed', { prefix: 'r' });
    await t.seedJobs(3, 'processing', { prefix: 's', ageMs: 2 * HOUR });
    // a job that cannot be read (a directory where its file should be): the first attempt fails in its third page
    const blocker = join(t.root, 'jobs', 'failed', `${ids[2300]}.json`);
    rmSync(blocker);
    mkdirSync(blocker);
    utimesSync(blocker, new Date(), new Date());
    const heartbeats: Array<{ phase: string; afterId?: string; bytes: number }> = [];
    await expect(detect(t, { runKey: 'wf/resume' }, heartbeats)).rejects.toMatchObject({ code: 'EISDIR' });
    const last = heartbeats.at(-1)!;
    expect(last).toMatchObject({ phase: 'failed', afterId: ids[1999] });
    rmSync(blocker, { recursive: true });
    writeFileSync(blocker, JSON.stringify({ id: ids[2300], timestamp: new Date().toISOString() }));
    const resumed = await detect(t, { runKey: 'wf/resume' }, undefined, last);
    const fresh = await detect(t, { runKey: 'wf/fresh' });
    expect(resumed.counts).toMatchObject({ failed: 2600, stuck: 3 });
    expect(resumed.sha256).toBe(fresh.sha256);
  });
});
