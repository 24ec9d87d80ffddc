import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../src/activities/digest.js';
import { INITIAL_PROCESSOR_INI } from '../src/demo/job-processor-environment.js';
import { ErrorType } from '../src/shared/constants.js';
import { abortSignal } from '../src/shared/messages.js';
import type { RunbookResult } from '../src/shared/types.js';
import type { PhaseSwitchRun } from '../src/workflows/backend-migration/steps.js';
import { startChildWorker, sigkill } from './support/child-worker.js';
import { Harness } from './support/harness.js';
import { saveHistory } from './support/histories.js';
import { jobTarget, type JobTestTarget } from './support/migration.js';
import { startRunbook } from './support/sqlite.js';
import { approve, failureOf } from './support/sqlite-recovery.js';

// backend-phase-switch against the real demo job processor (a process per target, its INI file, /health, /metrics
// and logs), jobs flowing through it the whole time.

/** INITIAL_PROCESSOR_INI (primary-only) with [data_backend] lines changed */
const iniWith = (values: Record<string, string>) =>
  Object.entries(values).reduce(
    (text, [k, v]) => text.replace(new RegExp(`^${k} = .*$`, 'm'), `${k} = ${v}`),
    INITIAL_PROCESSOR_INI,
  );
const DUAL_WRITE_INI = iniWith({ dual_write: 'true', phase: 'dual-write' });
const cutOverIni = (percent: number) =>
  iniWith({ dual_write: 'true', cutover_percent: String(percent), phase: 'cut-over' });

const extraOf = (r: RunbookResult | undefined) => r?.extra as unknown as PhaseSwitchRun;
const stepOf = (r: RunbookResult, name: string) => r.steps.find((s) => s.name === name);

/** Queued jobs arriving the whole time (a few every 100 ms), so every soak look has jobs to judge. */
function traffic(t: JobTestTarget): () => Promise<void> {
  let stopped = false;
  const running = (async () => {
    while (!stopped) {
      await t.seedJobs(4, 'queue');
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return async () => {
    stopped = true;
    await running;
  };
}

type Status = Awaited<ReturnType<Harness['waitFor']>>;
const soakOf = (s: Status) =>
  s.results?.soak as { label: string; deadline: string; looks: number; leftMs: number } | undefined;

describe('backend-phase-switch', () => {
  const h = new Harness();
  beforeAll(async () => {
    await h.start();
  });
  afterAll(() => h.close());

  const start = (t: JobTestTarget, input: Record<string, unknown>, harness: Harness = h) =>
    startRunbook(harness, 'backend-phase-switch', { environment: t.envName, target: 'jobs', ...input });

  it('soaks after each forward step and advances: primary-only → dual-write → cut-over 25% → 50%, then last known good', async () => {
    const t = await jobTarget(h);
    const stop = traffic(t);
    try {
      const handle = await start(t, { to: 'cut-over', percent: 50 });
      const waiting = await approve(h, handle);
      expect(waiting.plan!.summary).toMatch(
        /^primary-only → cut-over 50% on .* in 3 step\(s\): dual-write → cut-over 25% → cut-over 50%; soak 2s after each forward step/,
      );
      expect(waiting.plan!.changes).toContainEqual({
        item: '3. cut-over 50%: data_backend.cutover_percent',
        from: '25',
        to: '50',
      });
      const result = (await handle.result()) as RunbookResult;
      expect(result.outcome).toBe('succeeded');
      expect(extraOf(result).steps).toEqual([
        { phase: 'dual-write', forward: true, result: expect.stringMatching(/^soaked: \d+ looks until /) as unknown },
        { phase: 'cut-over 25%', forward: true, result: expect.stringMatching(/^soaked/) as unknown },
        { phase: 'cut-over 50%', forward: true, result: expect.stringMatching(/^soaked/) as unknown },
      ]);
      // only the [data_backend] values changed; every other byte is as it was
      expect(t.readIni()).toBe(cutOverIni(50));
      const lkg = extraOf(result).lastKnownGood!;
      expect(readFileSync(lkg.file)).toEqual(t.iniBytes());
      expect(lkg.digest).toBe(sha256(t.iniBytes()));
      expect(stepOf(result, 'soak')).toMatchObject({ status: 'succeeded' });
      expect(result.compensations).toEqual([]);
      // the processor runs the new routing: jobs went to parquet
      expect(await t.metric('jobs_processed_total', { backend: 'parquet' })).toBeGreaterThan(0);
      await saveHistory(h.client, handle.workflowId, 'progressive-cut-over', 'backend-phase-switch');
    } finally {
      await stop();
    }
  });

  /**
   * From dual-write, with jobs flowing: the run is approved, and once `soaking` holds for its soak a `fail` fault is
   * switched on in parquet. Returns the run's failure and whether the INI file is byte-identical to before.
   */
  async function faultDuringSoak(
    input: Record<string, unknown>,
    soaking: (soak: { label: string; looks: number }) => boolean,
  ) {
    const t = await jobTarget(h, { ini: DUAL_WRITE_INI });
    const before = t.iniBytes();
    const stop = traffic(t);
    try {
      const handle = await start(t, input);
      await approve(h, handle);
      await h.waitFor(handle, (s) => soakOf(s) !== undefined && soaking(soakOf(s)!), 90_000);
      await t.setFault('parquet', { mode: 'fail' });
      const failure = await failureOf(handle);
      return { t, handle, failure, identical: t.iniBytes().equals(before) };
    } finally {
      await stop();
      await t.setFault('parquet', null);
    }
  }

  it('a soak that fails (fault switched on in the new backend) rolls back by itself: the INI file byte-identical, SoakFailed', async () => {
    const { t, handle, failure, identical } = await faultDuringSoak(
      { to: 'cut-over', percent: 25, soakWindow: '30s' },
      (soak) => soak.looks >= 1,
    );
    expect(failure.type).toBe(ErrorType.SoakFailed);
    expect(failure.message).toMatch(
      /soak of cut-over 25% failed at look \d+ .*parquet.*; rolling back to checkpoint 2\.1 \(dual-write\)$/,
    );
    expect(failure.result!.compensations).toMatchObject([{ step: 'write configuration', status: 'succeeded' }]);
    expect(extraOf(failure.result).rolledBackTo).toBe('checkpoint 2.1 (dual-write)');
    expect(identical).toBe(true);
    // checkpoint 2.1's validation saw the processor load the dual-write configuration again
    expect(
      t
        .logLines()
        .some((l) => l.includes('Backend primary=heavydb secondary=parquet dual_write=true cutover_percent=0')),
    ).toBe(true);
    expect(existsSync(t.lastKnownGoodDir)).toBe(false);
    await saveHistory(h.client, handle.workflowId, 'soak-fails-rolls-back', 'backend-phase-switch');
  });

  it('a progressive cut-over stops at the failing percent and rolls back', async () => {
    const { failure, identical } = await faultDuringSoak(
      { to: 'cut-over', percent: 100, soakWindow: '3s' },
      (soak) => soak.label === 'cut-over 50%' && soak.looks >= 1,
    );
    expect(failure.type).toBe(ErrorType.SoakFailed);
    expect(extraOf(failure.result).steps).toEqual([
      { phase: 'cut-over 25%', forward: true, result: expect.stringMatching(/^soaked/) as unknown },
      { phase: 'cut-over 50%', forward: true, result: 'soak failed' },
    ]);
    expect(identical).toBe(true);
  });

  it('an abort during the soak rolls back as a failed soak does: outcome aborted, the INI file byte-identical', async () => {
    const t = await jobTarget(h);
    const before = t.iniBytes();
    const handle = await start(t, { to: 'dual-write', soakWindow: '30s' });
    await approve(h, handle);
    await h.waitFor(handle, (s) => (soakOf(s)?.looks ?? 0) >= 1);
    await handle.signal(abortSignal, { by: 'alice', reason: 'wrong maintenance window' });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('aborted');
    expect(result.compensations).toMatchObject([{ step: 'write configuration', status: 'succeeded' }]);
    expect(extraOf(result).rolledBackTo).toBe('checkpoint 1.1 (primary-only)');
    expect(t.iniBytes().equals(before)).toBe(true);
  });

  it('a step back has no soak, only health; the last known good stays as it was', async () => {
    const t = await jobTarget(h, { ini: cutOverIni(50) });
    const handle = await start(t, { to: 'primary-only' });
    await approve(h, handle);
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect(extraOf(result).steps).toEqual([{ phase: 'primary-only', forward: false, result: 'healthy' }]);
    expect(stepOf(result, 'soak')).toMatchObject({ status: 'skipped' });
    expect(stepOf(result, 'snapshot last known good')).toMatchObject({ status: 'skipped' });
    expect(t.readIni()).toBe(INITIAL_PROCESSOR_INI);
  });

  it('checkpoint 2.1: dual write on, cut-over 0, restart, validated by the processing log', async () => {
    const t = await jobTarget(h, { ini: cutOverIni(50) });
    const pid = (await t.stats()).pid;
    const handle = await start(t, { checkpoint: '2.1' });
    const waiting = await approve(h, handle);
    expect(waiting.plan!.summary).toMatch(/^roll .* back to checkpoint 2\.1 \(traffic routing rollback/);
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect(t.readIni()).toBe(DUAL_WRITE_INI);
    expect(stepOf(result, 'validate')!.result).toMatch(/dual_write=true cutover_percent=0/);
    expect((await t.stats()).pid).not.toBe(pid);
    expect(extraOf(result).rolledBackTo).toBe('checkpoint 2.1');
    await saveHistory(h.client, handle.workflowId, 'checkpoint-2.1', 'backend-phase-switch');
  });

  it('invalid input changes nothing: InvalidInput naming the field', async () => {
    const t = await jobTarget(h);
    const cases: Array<[Record<string, unknown>, RegExp, string?]> = [
      [{ to: 'sideways' }, /to: /],
      [{ to: 'cut-over', percent: 150 }, /percent: /],
      [{ to: 'cut-over' }, /percent: cut-over needs a percent/],
      [{ checkpoint: '9.9' }, /checkpoint: "9\.9" is not a checkpoint/],
      [{ to: 'dual-write', soakWindow: '1s' }, /soakWindow: 1s is shorter than the environment's 2s/],
      [
        { to: 'dual-write' },
        /configuration data_backend\.primary: "mysql" is not a backend/,
        iniWith({ primary: 'mysql' }),
      ],
    ];
    for (const [input, message, ini] of cases) {
      if (ini) t.writeIni(ini);
      const before = t.iniBytes();
      const reloads = (await t.stats()).reloads;
      const failure = await failureOf(await start(t, input));
      expect(failure.type, JSON.stringify(input)).toBe(ErrorType.InvalidInput);
      expect(failure.message).toMatch(message);
      expect(t.iniBytes().equals(before)).toBe(true);
      expect((await t.stats()).reloads).toBe(reloads);
    }
    expect(existsSync(t.lastKnownGoodDir)).toBe(false);
  });

  it('a dry run changes nothing', async () => {
    const t = await jobTarget(h);
    const handle = await start(t, { to: 'new-only', dryRun: true });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('dry_run');
    expect(result.plan!.summary).toMatch(
      /in 5 step\(s\): dual-write → cut-over 25% → cut-over 50% → cut-over 100% → new-only/,
    );
    expect(t.readIni()).toBe(INITIAL_PROCESSOR_INI);
    expect((await t.stats()).reloads).toBe(0);
    expect(existsSync(t.lastKnownGoodDir)).toBe(false);
  });
});

describe('backend-phase-switch: a worker killed during the soak', () => {
  const hk = new Harness();
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    await hk.start({ worker: false });
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await hk.close();
  });

  it('resumes the soak with its deadline unchanged (history: one window start, the workflow clock reaches the deadline only after the last look)', async () => {
    const t = await jobTarget(hk);
    const stop = traffic(t);
    let handle: WorkflowHandle | undefined;
    try {
      const worker = await startChildWorker(hk, children);
      handle = await startRunbook(hk, 'backend-phase-switch', {
        environment: t.envName,
        target: 'jobs',
        to: 'dual-write',
        soakWindow: '15s',
      });
      await approve(hk, handle);
      const during = await hk.waitFor(handle, (s) => (soakOf(s)?.looks ?? 0) >= 2, 60_000);
      const deadline = soakOf(during)!.deadline;
      await sigkill(worker.child);
      await hk.startWorker();
      const result = (await handle.result()) as RunbookResult;
      expect(result.outcome).toBe('succeeded');
      expect((result.results!.soak as { deadline: string }).deadline).toBe(deadline);

      const events = (await handle.fetchHistory()).events!;
      const scheduled = events.filter((e) => e.activityTaskScheduledEventAttributes);
      // the window started once: one metrics snapshot for it, before and after the kill
      expect(
        scheduled.filter((e) => e.activityTaskScheduledEventAttributes!.activityType!.name === 'readMetrics'),
      ).toHaveLength(1);
      const time = (e: (typeof events)[number]) =>
        Number(e.eventTime!.seconds) * 1000 + Math.floor((e.eventTime!.nanos ?? 0) / 1e6);
      const ms = (d: { seconds?: unknown; nanos?: number | null }) =>
        Number(d.seconds ?? 0) * 1000 + (d.nanos ?? 0) / 1e6;
      // the soak's timers: after its metrics snapshot, one interval (200ms) at most each, every one fired
      const windowStart = Number(
        scheduled.find((e) => e.activityTaskScheduledEventAttributes!.activityType!.name === 'readMetrics')!.eventId,
      );
      const soakTimers = events.filter(
        (e) =>
          Number(e.eventId) > windowStart &&
          e.timerStartedEventAttributes &&
          ms(e.timerStartedEventAttributes.startToFireTimeout!) <= 200,
      );
      const ids = new Set(soakTimers.map((e) => e.timerStartedEventAttributes!.timerId));
      const fired = events.filter((e) => e.timerFiredEventAttributes && ids.has(e.timerFiredEventAttributes.timerId));
      expect(fired.length).toBe(soakTimers.length);
      // the window ended at the deadline fixed before the kill. The workflow's clock is the start of the workflow task
      // that reads a look's answer: after the last look that task started at or after the deadline, after the look
      // before it, before the deadline (the window neither restarted nor ended early). A timer's own fire time can be
      // a few ms short of the deadline when the look after it carries the clock past it.
      const lookIds = new Set(
        scheduled
          .filter((e) => e.activityTaskScheduledEventAttributes!.activityType!.name === 'soakLook')
          .map((e) => String(e.eventId)),
      );
      const looksDone = events.filter(
        (e) =>
          e.activityTaskCompletedEventAttributes &&
          lookIds.has(String(e.activityTaskCompletedEventAttributes.scheduledEventId)),
      );
      const clockAfter = (done: (typeof events)[number]) => {
        const completed = events.find(
          (e) => Number(e.eventId) > Number(done.eventId) && e.workflowTaskCompletedEventAttributes,
        )!;
        const startedId = String(completed.workflowTaskCompletedEventAttributes!.startedEventId);
        return time(events.find((e) => String(e.eventId) === startedId)!);
      };
      expect(looksDone.length).toBe(fired.length);
      expect(clockAfter(looksDone.at(-1)!)).toBeGreaterThanOrEqual(Date.parse(deadline));
      expect(clockAfter(looksDone.at(-2)!)).toBeLessThan(Date.parse(deadline));
      // the workflow tasks were worked by two workers: the kill landed inside the run
      const identities = new Set(
        events
          .filter((e) => e.workflowTaskStartedEventAttributes)
          .map((e) => e.workflowTaskStartedEventAttributes!.identity),
      );
      expect(identities.size).toBeGreaterThanOrEqual(2);
      expect(t.readIni()).toBe(DUAL_WRITE_INI);
      await saveHistory(hk.client, handle.workflowId, 'worker-killed-during-soak', 'backend-phase-switch');
    } finally {
      await stop();
    }
  });
});
