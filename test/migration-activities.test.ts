import { createServer, type Server } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMigrationActivities, type MetricsSnapshot } from '../src/activities/migration/index.js';
import { parsePrometheusText } from '../src/activities/migration/prometheus.js';
import { sha256 } from '../src/activities/digest.js';
import { phaseOf, phaseValues, planPhaseSteps } from '../src/shared/migration.js';
import { writeEnvironment } from './support/environments.js';

// The migration activities against real files, a real managed process and a small HTTP server standing in for
// the processor's /health and /metrics (the demo processor's own tests cover it with the real one).

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'runbook-migration-acts-'));
  dirs.push(dir);
  return dir;
};

let server: Server;
let port = 0;
const endpoint = { status: 200, metrics: '' };

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/health') res.writeHead(endpoint.status).end(endpoint.status === 200 ? 'healthy' : 'wedged');
    else res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(endpoint.metrics);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const INI = [
  '# the processor',
  '[data_backend]',
  'primary = heavydb',
  'secondary = parquet',
  'dual_write = false ; seed: enable_dual_write',
  'cutover_percent = 0',
  'phase = primary-only',
  '',
].join('\n');

function metrics(b: Record<string, { ok: number; failed: number; seconds: number }>): string {
  const lines = ['# HELP jobs_processed_total Jobs processed', '# TYPE jobs_processed_total counter'];
  for (const [backend, c] of Object.entries(b)) {
    lines.push(`jobs_processed_total{backend="${backend}"} ${c.ok}`);
    lines.push(`jobs_failed_total{backend="${backend}"} ${c.failed}`);
    lines.push(`job_duration_seconds_bucket{backend="${backend}",le="+Inf"} ${c.ok + c.failed}`);
    lines.push(`job_duration_seconds_sum{backend="${backend}"} ${c.seconds}`);
    lines.push(`job_duration_seconds_count{backend="${backend}"} ${c.ok + c.failed}`);
  }
  return lines.join('\n') + '\n';
}

const target = {
  keys: {
    primary: 'data_backend.primary',
    dualWrite: 'data_backend.dual_write',
    cutoverPercent: 'data_backend.cutover_percent',
    phase: 'data_backend.phase',
  },
  backends: { old: 'heavydb', new: 'parquet' },
};

function setup() {
  const dir = tempDir();
  const ini = join(dir, 'config', 'processor.ini');
  mkdirSync(join(dir, 'config'));
  mkdirSync(join(dir, 'logs'));
  writeFileSync(ini, INI);
  writeEnvironment(join(dir, 'environments'), {
    name: 'mig',
    approval: { approvers: ['alice'], quorum: 1, timeout: '1h' },
    targets: {
      jobs: {
        migration: {
          config: { type: 'ini', path: '../config/processor.ini' },
          keys: target.keys,
          backends: target.backends,
          services: {
            processor: {
              type: 'process',
              pidFile: '../run/processor.pid',
              command: [process.execPath, '-e', 'setInterval(() => {}, 1000)'],
            },
          },
          endpoints: { health: `http://127.0.0.1:${port}/health`, metrics: `http://127.0.0.1:${port}/metrics` },
          soak: { window: '2s', interval: '500ms', maxErrorRate: 0.1, maxLatency: '200ms', minJobs: 2 },
          checkpoints: { '2.1': { set: { 'data_backend.cutover_percent': '0' } } },
          rollbackCheckpoints: { 'cut-over': '2.1' },
          workDir: '../work',
          lastKnownGood: { dir: '../lkg' },
          jobs: { type: 'spool', root: '../spool' },
          logs: { dir: '../logs' },
          outputs: { dir: '../output', quarantineDir: '../quarantine' },
        },
      },
    },
  });
  const acts = createMigrationActivities({
    environmentsDir: join(dir, 'environments'),
    log: pino({ level: 'silent' }),
  });
  const ref = { environment: 'mig', target: 'jobs' };
  const run = <R>(fn: () => Promise<R>, heartbeatDetails?: unknown) =>
    new MockActivityEnvironment(heartbeatDetails === undefined ? {} : { heartbeatDetails }).run<
      [],
      R,
      () => Promise<R>
    >(fn);
  return { dir, ini, acts, ref, run };
}

describe('phaseValues and phaseOf', () => {
  it('gives the key values of each phase, and reads the phase back from them', () => {
    expect(phaseValues('primary-only', undefined, target)).toEqual({
      'data_backend.primary': 'heavydb',
      'data_backend.dual_write': 'false',
      'data_backend.cutover_percent': '0',
      'data_backend.phase': 'primary-only',
    });
    expect(phaseValues('cut-over', 25, target)).toMatchObject({
      'data_backend.dual_write': 'true',
      'data_backend.cutover_percent': '25',
      'data_backend.phase': 'cut-over',
    });
    expect(phaseValues('new-only', undefined, target)).toMatchObject({ 'data_backend.primary': 'parquet' });
    for (const [phase, percent] of [
      ['primary-only', 0],
      ['dual-write', 0],
      ['cut-over', 50],
      ['new-only', 0],
    ] as const)
      expect(phaseOf(phaseValues(phase, percent, target), target)).toEqual({ phase, percent });
    // cut-over at 0% is the dual-write phase
    expect(phaseOf(phaseValues('cut-over', 0, target), target)).toEqual({ phase: 'dual-write', percent: 0 });
  });

  it('calls anything else custom, saying why', () => {
    const v = phaseValues('dual-write', undefined, target);
    expect(phaseOf({ ...v, 'data_backend.primary': 'mysql' }, target)).toMatchObject({ phase: 'custom' });
    expect(phaseOf({ ...v, 'data_backend.cutover_percent': '101' }, target)).toMatchObject({ phase: 'custom' });
    expect(phaseOf({ ...v, 'data_backend.phase': 'new-only' }, target)).toMatchObject({
      phase: 'custom',
      reason: expect.stringContaining('dual-write') as unknown,
    });
    expect(
      phaseOf({ ...phaseValues('new-only', undefined, target), 'data_backend.dual_write': 'true' }, target),
    ).toMatchObject({ phase: 'custom' });
  });
});

describe('planPhaseSteps', () => {
  const at = (phase: 'primary-only' | 'dual-write' | 'cut-over' | 'new-only', percent = 0) => ({ phase, percent });
  const show = (steps: ReturnType<typeof planPhaseSteps>) =>
    steps.map((s) => `${s.phase}${s.phase === 'cut-over' ? ` ${s.percent}` : ''}${s.forward ? '' : ' (back)'}`);

  it('forward: through dual-write and the cut-over steps below the asked percent, each a step', () => {
    expect(show(planPhaseSteps(at('primary-only'), at('cut-over', 50), [25, 50, 100]))).toEqual([
      'dual-write',
      'cut-over 25',
      'cut-over 50',
    ]);
    expect(show(planPhaseSteps(at('cut-over', 25), at('cut-over', 60), [100, 25, 50]))).toEqual([
      'cut-over 50',
      'cut-over 60',
    ]);
    expect(show(planPhaseSteps(at('dual-write'), at('new-only'), [25, 50, 100]))).toEqual([
      'cut-over 25',
      'cut-over 50',
      'cut-over 100',
      'new-only',
    ]);
  });

  it('back: one step straight there; already there: none; cut-over 0% is dual-write', () => {
    expect(show(planPhaseSteps(at('cut-over', 50), at('primary-only'), [25, 50, 100]))).toEqual([
      'primary-only (back)',
    ]);
    expect(show(planPhaseSteps(at('cut-over', 50), at('cut-over', 25), [25, 50, 100]))).toEqual(['cut-over 25 (back)']);
    expect(planPhaseSteps(at('dual-write'), at('dual-write'), [25])).toEqual([]);
    expect(planPhaseSteps(at('dual-write'), at('cut-over', 0), [25])).toEqual([]);
  });
});

describe('parsePrometheusText', () => {
  it('reads samples with labels, escapes and special values; skips comments', () => {
    expect(
      parsePrometheusText(
        '# TYPE x counter\nx{a="1",b="q\\"uote"} 3\ny 1.5e3 1700000000\nz{le="+Inf"} +Inf\n\nw{a="x",} NaN\n',
      ),
    ).toEqual([
      { name: 'x', labels: { a: '1', b: 'q"uote' }, value: 3 },
      { name: 'y', labels: {}, value: 1500 },
      { name: 'z', labels: { le: '+Inf' }, value: Infinity },
      { name: 'w', labels: { a: 'x' }, value: NaN },
    ]);
  });
});

describe('migration activities', () => {
  it('describes the target without credentials, and reads the configuration with its phase', async () => {
    const { acts, ref, run } = setup();
    const d = await run(() => acts.describeMigrationTarget(ref));
    expect(d.configStore).toMatch(/^ini .*processor\.ini$/);
    expect(d.services).toEqual({ processor: expect.stringContaining('process') as unknown });
    expect(d.rollbackCheckpoints).toEqual({ 'cut-over': '2.1' });
    const read = await run(() => acts.readConfig(ref));
    expect(read.phase).toEqual({ phase: 'primary-only', percent: 0 });
  });

  it('a rollbackCheckpoints entry naming no checkpoint is EnvironmentInvalid naming the field', async () => {
    const { dir, acts, ref, run } = setup();
    const file = join(dir, 'environments', 'mig.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace(/(cut-over: ["']?)2\.1/, '$19.9'));
    await expect(run(() => acts.describeMigrationTarget(ref))).rejects.toMatchObject({
      type: 'EnvironmentInvalid',
      message: expect.stringContaining('rollbackCheckpoints.cut-over') as unknown,
    });
  });

  it('writeConfig: PlanStale when a key changed since the plan; onlyIfCurrent leaves what others set', async () => {
    const { ini, acts, ref, run } = setup();
    const before = readFileSync(ini);
    const values = phaseValues('dual-write', undefined, target);
    const from = phaseValues('primary-only', undefined, target);
    writeFileSync(ini, INI.replace('primary = heavydb', 'primary = mysql'));
    await expect(run(() => acts.writeConfig({ ...ref, values, expectCurrent: from }))).rejects.toMatchObject({
      type: 'PlanStale',
    });
    writeFileSync(ini, before);
    const w = await run(() => acts.writeConfig({ ...ref, values, expectCurrent: from }));
    expect(w).toMatchObject({ changed: true, before: from });
    expect((await run(() => acts.readConfig(ref))).phase).toEqual({ phase: 'dual-write', percent: 0 });
    // someone sets the percent meanwhile: the undo puts back the rest and leaves that key
    writeFileSync(ini, readFileSync(ini, 'utf8').replace('cutover_percent = 0', 'cutover_percent = 7'));
    const undo = await run(() =>
      acts.writeConfig({
        ...ref,
        values: from,
        onlyIfCurrent: { ...values, 'data_backend.cutover_percent': '0' },
      }),
    );
    expect(undo.skipped).toEqual(['data_backend.cutover_percent']);
    expect(readFileSync(ini, 'utf8')).toBe(INI.replace('cutover_percent = 0', 'cutover_percent = 7'));
    // a second write of the same values changes nothing
    const now = { ...from, 'data_backend.cutover_percent': '7' };
    expect(await run(() => acts.writeConfig({ ...ref, values: now }))).toMatchObject({ changed: false });
  });

  it('last known good: private snapshot with its digest; restore keeps the replaced bytes as failed_backup', async () => {
    const { dir, ini, acts, ref, run } = setup();
    await expect(run(() => acts.restoreLastKnownGood(ref))).rejects.toMatchObject({ type: 'VerificationFailed' });
    const saved = await run(() => acts.snapshotLastKnownGood(ref));
    expect(saved.digest).toBe(sha256(INI));
    expect(statSync(saved.file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'lkg')).mode & 0o777).toBe(0o700);
    const broken = INI.replace('primary = heavydb', 'primary = parquet');
    writeFileSync(ini, broken);
    const restored = await run(() => acts.restoreLastKnownGood({ ...ref, expectDigest: saved.digest }));
    expect(restored).toMatchObject({ changed: true, restoredDigest: saved.digest, replacedDigest: sha256(broken) });
    expect(readFileSync(ini, 'utf8')).toBe(INI);
    expect(readFileSync(restored.failedBackup!, 'utf8')).toBe(broken);
    expect(statSync(restored.failedBackup!).mode & 0o777).toBe(0o600);
    // a retry changes nothing and reports the same replaced bytes
    expect(await run(() => acts.restoreLastKnownGood(ref))).toMatchObject({
      changed: false,
      replacedDigest: sha256(broken),
    });
    // a snapshot file that no longer matches its recorded digest is refused
    writeFileSync(saved.file, 'tampered');
    await expect(run(() => acts.restoreLastKnownGood(ref))).rejects.toMatchObject({ type: 'EvidenceMismatch' });
  });

  it('restartServices starts, restarts and stops the named services; waitMigrationHealthy polls /health', async () => {
    const { acts, ref, run } = setup();
    const started = await run(() => acts.restartServices({ ...ref, action: 'start' }));
    expect(started).toEqual([
      {
        name: 'processor',
        service: expect.any(String) as unknown,
        state: expect.stringMatching(/^pid \d+$/) as unknown,
      },
    ]);
    const restarted = await run(() => acts.restartServices({ ...ref, names: ['processor'], action: 'restart' }));
    expect(restarted[0]!.state).not.toBe(started[0]!.state);
    expect(await run(() => acts.restartServices({ ...ref, action: 'stop' }))).toMatchObject([{ state: 'not running' }]);
    await expect(run(() => acts.restartServices({ ...ref, names: ['nope'], action: 'stop' }))).rejects.toMatchObject({
      type: 'EnvironmentInvalid',
    });
    endpoint.status = 200;
    expect(await run(() => acts.waitMigrationHealthy(ref))).toMatchObject({ status: 200 });
    endpoint.status = 503;
    await expect(run(() => acts.waitMigrationHealthy({ ...ref, within: '300ms' }))).rejects.toMatchObject({
      type: 'VerificationFailed',
    });
    endpoint.status = 200;
  });

  it('soakLook: error rate and mean latency per backend over the window, against the thresholds', async () => {
    const { acts, ref, run } = setup();
    endpoint.status = 200;
    endpoint.metrics = metrics({
      heavydb: { ok: 10, failed: 0, seconds: 1 },
      parquet: { ok: 4, failed: 0, seconds: 0.4 },
    });
    const since: MetricsSnapshot = await run(() => acts.readMetrics(ref));
    expect(since.backends.parquet).toEqual({ processed: 4, failed: 0, durationSum: 0.4, durationCount: 4 });
    endpoint.metrics = metrics({
      heavydb: { ok: 14, failed: 0, seconds: 1.2 },
      parquet: { ok: 5, failed: 1, seconds: 0.5 },
    });
    const clean = await run(() => acts.soakLook({ ...ref, since }));
    // parquet saw 2 jobs (1 failed): 0.5 > 0.1; heavydb 4 jobs at 50ms
    expect(clean.backends.heavydb).toEqual({ jobs: 4, failed: 0, errorRate: 0, meanLatencyMs: 50 });
    expect(clean.breaches).toEqual(['parquet: error rate 0.50 > 0.1 (1 of 2 jobs)']);
    expect(clean.healthy).toBe(true);
    endpoint.metrics = metrics({
      heavydb: { ok: 14, failed: 0, seconds: 3 },
      parquet: { ok: 4, failed: 0, seconds: 0.4 },
    });
    endpoint.status = 503;
    const slow = await run(() => acts.soakLook({ ...ref, since }));
    expect(slow.breaches).toEqual(['heavydb: mean latency 500ms > 200ms (4 jobs)']);
    expect(slow.healthy).toBe(false);
    expect(slow.healthProblem).toMatch(/503/);
    endpoint.status = 200;
    // counters that went down: the service restarted, the window counts from zero
    endpoint.metrics = metrics({ heavydb: { ok: 1, failed: 0, seconds: 0.01 } });
    expect((await run(() => acts.soakLook({ ...ref, since }))).backends.heavydb).toMatchObject({ jobs: 1 });
  });

  it('waitForLogLine finds a line written after the cursor; a retry keeps the deadline and cursor', async () => {
    const { dir, acts, ref, run } = setup();
    const log = join(dir, 'logs', 'job_processor_2026-01-01.log');
    writeFileSync(
      log,
      '2026-01-01T00:00:00Z INFO Backend primary=heavydb secondary=parquet dual_write=false cutover_percent=0\n',
    );
    const cursor = await run(() => acts.migrationLogCursor(ref));
    const pattern = 'Backend primary=heavydb .*dual_write=true';
    await expect(run(() => acts.waitForLogLine({ ...ref, pattern, within: '300ms', cursor }))).rejects.toMatchObject({
      type: 'VerificationFailed',
    });
    appendFileSync(
      log,
      '2026-01-01T00:00:01Z INFO Backend primary=heavydb secondary=parquet dual_write=true cutover_percent=0\n',
    );
    const found = await run(() => acts.waitForLogLine({ ...ref, pattern, within: '2s', cursor }));
    expect(found.line).toContain('dual_write=true');
    // a retry whose first attempt's deadline has passed fails at once, whatever `within` says
    await expect(
      run(() => acts.waitForLogLine({ ...ref, pattern: 'never', within: '1h' }), {
        offsets: {},
        startedAt: Date.now() - 2 * 3600_000,
      }),
    ).rejects.toMatchObject({ type: 'VerificationFailed' });
  });
});
