import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTarget } from '../src/activities/environment.js';
import { IniConfigStore } from '../src/activities/migration/config/ini.js';
import { INITIAL_PROCESSOR_INI } from '../src/demo/job-processor-environment.js';
import { Harness } from './support/harness.js';
import { jobTarget, type JobTestTarget } from './support/migration.js';
import { replayTag, spoolName } from '../src/activities/migration/jobs/spool-names.js';

// The demo job processor itself (a real process per target): the contract in docs/backend-migration.md.

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
/** the contract's routing: the first 4 bytes of sha256(id), big-endian, modulo 100 */
const bucket = (id: string) => createHash('sha256').update(id).digest().readUInt32BE(0) % 100;
const iniWith = (values: Record<string, string>) =>
  Object.entries(values).reduce(
    (text, [k, v]) => text.replace(new RegExp(`^${k} = .*$`, 'm'), `${k} = ${v}`),
    INITIAL_PROCESSOR_INI,
  );

async function until<T>(fn: () => Promise<T> | T, ok: (v: T) => boolean, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: last ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `Completed` lines: job id → { backend, output, replay } */
function completed(t: JobTestTarget): Map<string, { backend: string; output: string; replay: string }> {
  const out = new Map<string, { backend: string; output: string; replay: string }>();
  for (const line of t.logLines()) {
    const m = /INFO Completed job (\S+) backend=(\S+) ms=\d+ output=(\S+) replay=(\S+)$/.exec(line);
    if (m) out.set(m[1]!, { backend: m[2]!, output: m[3]!, replay: m[4]! });
  }
  return out;
}

describe('demo job processor', () => {
  const h = new Harness();
  beforeAll(async () => {
    await h.start({ worker: false });
  });
  afterAll(() => h.close());

  it('works queued jobs to completed, with an output run (summary, then manifest) and log lines per job', async () => {
    const t = await jobTarget(h);
    const env = await loadTarget(h.environmentsDir, t.envName, 'jobs');
    expect(env.target.migration?.checkpoints['2.3']).toMatchObject({ stopFirst: true, restoreLastKnownGood: true });
    const stuck = await t.seedJobs(2, 'processing', { ageMs: 2 * 3600_000 });
    const ids = await t.seedJobs(300, 'queue', { payload: { shape: 'square' } });
    const [bad] = await t.seedJobs(1, 'queue', { notJson: true, prefix: 'broken' });
    await t.waitForDrain();

    expect(await t.counts()).toEqual({ queue: 0, processing: 2, failed: 1, completed: 300 });
    // stuck jobs are left alone, with their old mtime
    for (const id of stuck)
      expect(Date.now() - statSync(join(t.root, 'jobs/processing', `${id}.json`)).mtimeMs).toBeGreaterThan(3600_000);
    expect(readFileSync(join(t.root, 'jobs/failed', `${bad}.json`), 'utf8')).toContain('not json');

    const done = completed(t);
    expect([...done.keys()].sort()).toEqual(ids);
    const runs = new Map(t.outputs().map((r) => [r.run, r]));
    expect(runs.size).toBe(300);
    for (const id of ids) {
      const run = runs.get(done.get(id)!.output)!;
      const name = `optimization_summary_${id}.txt`;
      const summary = run.files[name]!;
      const job = JSON.parse(readFileSync(join(t.root, 'jobs/completed', `${id}.json`), 'utf8')) as object;
      expect(summary).toMatch(
        new RegExp(
          `^job: ${id}\nbackend: heavydb\nExecution Time: \\d+\\.\\d{3}\nresult: [0-9a-f]{64}\nreplay: -\nEND\n$`,
        ),
      );
      expect(summary).toContain(`result: ${sha256(JSON.stringify(job))}`);
      expect(run.manifest).toEqual({ files: { [name]: sha256(summary) } });
    }
    const lines = t.logLines();
    expect(lines[0]).toMatch(
      /^\S+Z INFO Backend primary=heavydb secondary=parquet dual_write=false cutover_percent=0$/,
    );
    expect(lines.filter((l) => / INFO Processing job job-\d+ backend=heavydb replay=-$/.test(l))).toHaveLength(300);
    expect(lines.filter((l) => l.includes(`ERROR Failed job ${bad} backend=`))).toHaveLength(1);
    expect(t.duplicates()).toBe(0);
    expect(await t.metric('jobs_processed_total', { backend: 'heavydb' })).toBe(300);
    expect(await t.metric('jobs_processed_total', { backend: 'parquet' })).toBe(0);
    expect(await t.metric('jobs_queue_depth')).toBe(0);
  });

  it('routes by cut-over percent and dual-writes the other backend; SIGHUP re-reads the INI', async () => {
    const t = await jobTarget(h);
    t.writeIni(iniWith({ dual_write: 'true', cutover_percent: '30', phase: 'cut-over' }));
    await t.reload();
    await until(
      () =>
        t
          .logLines()
          .some((l) => l.endsWith('INFO Backend primary=heavydb secondary=parquet dual_write=true cutover_percent=30')),
      Boolean,
      'config loaded line after SIGHUP',
    );
    expect(await t.metric('job_processor_config_info', { primary: 'heavydb', cutover_percent: '30' })).toBe(1);
    const ids = await t.seedJobs(400, 'queue');
    await t.waitForDrain();
    const done = completed(t);
    const lines = t.logLines();
    for (const id of ids) {
      const expected = bucket(id) < 30 ? 'parquet' : 'heavydb';
      const other = expected === 'parquet' ? 'heavydb' : 'parquet';
      expect(done.get(id)?.backend).toBe(expected);
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(` INFO Dual write job ${id} secondary=${other}$`)));
    }
    const toParquet = ids.filter((id) => bucket(id) < 30).length;
    expect(toParquet).toBeGreaterThan(80);
    expect(await t.metric('jobs_processed_total', { backend: 'parquet' })).toBe(toParquet);

    // new-only: everything to parquet, no dual write
    t.writeIni(iniWith({ primary: 'parquet', secondary: 'heavydb', phase: 'new-only' }));
    await t.reload();
    const later = await t.seedJobs(50, 'queue');
    await t.waitForDrain();
    for (const id of later) expect(completed(t).get(id)?.backend).toBe('parquet');
    expect(t.logLines().filter((l) => later.some((id) => l.includes(`Dual write job ${id} `)))).toEqual([]);

    // an invalid configuration: unhealthy, nothing processed, until a valid one is loaded
    t.writeIni(iniWith({ cutover_percent: '150' }));
    await t.reload();
    const invalid = await until(t.health, (r) => r.status === 503, 'unhealthy after an invalid INI');
    expect(invalid.body).toContain('cutover_percent "150" is outside 0-100');
    await t.seedJobs(5, 'queue');
    await new Promise((r) => setTimeout(r, 300));
    expect((await t.counts()).queue).toBe(5);
    t.writeIni(INITIAL_PROCESSOR_INI);
    await t.reload();
    await t.waitHealthy();
    await t.waitForDrain();
    expect((await t.stats()).reloads).toBe(4);
    expect(t.duplicates()).toBe(0);
  });

  it('shows each fault in /metrics and /health; a wedged processor recovers by restart', async () => {
    const t = await jobTarget(h);
    // fail: the routed backend's jobs fail (keeping their replay key); /health 503
    await t.setFault('heavydb', { mode: 'fail' });
    const health = await t.health();
    expect(health).toEqual({ status: 503, body: expect.stringContaining('backend heavydb failing (fault)') });
    expect(await t.metric('job_processor_fault_info', { backend: 'heavydb', mode: 'fail' })).toBe(1);
    const failing = await t.seedJobs(10, 'queue', { replayKey: 'wf/run/x' });
    await t.waitForDrain();
    expect(await t.jobIds('failed')).toEqual(failing);
    // the failed file keeps its name, and with it the replay's tag
    const tag = replayTag('wf/run/x');
    const failedJob = JSON.parse(
      readFileSync(join(t.root, 'jobs/failed', spoolName(failing[0]!, tag)), 'utf8'),
    ) as Record<string, unknown>;
    expect(failedJob).toMatchObject({ id: failing[0], lastError: expect.any(String) });
    expect(await t.metric('jobs_failed_total', { backend: 'heavydb' })).toBe(10);
    expect(
      t.logLines().filter((l) => new RegExp(` ERROR Failed job \\S+ backend=heavydb error=.+ replay=${tag}$`).test(l)),
    ).toHaveLength(10);

    // slow: healthy, the fault named; the jobs take at least its delay
    await t.setFault('heavydb', { mode: 'slow', ms: 100 });
    expect(await t.health()).toEqual({ status: 200, body: 'healthy\nfaults: heavydb=slow\n' });
    await t.seedJobs(4, 'queue');
    await t.waitForDrain();
    expect(await t.metric('job_processor_fault_info', { backend: 'heavydb', mode: 'slow' })).toBe(1);
    const sum = await t.metric('job_duration_seconds_sum', { backend: 'heavydb' });
    expect(sum).toBeGreaterThanOrEqual(0.4);

    // empty: the job completes with an empty summary (what corruption recovery looks for)
    await t.setFault('heavydb', { mode: 'empty' });
    const [empty] = await t.seedJobs(1, 'queue');
    await t.waitForDrain();
    const run = t.outputs().find((r) => r.files[`optimization_summary_${empty}.txt`] !== undefined)!;
    expect(run.files[`optimization_summary_${empty}.txt`]).toBe('');
    expect(await t.metric('job_outputs_empty_total', { backend: 'heavydb' })).toBe(1);

    // a failing dual-write target: a warning, the job still completes; /health stays 200 (nothing is routed there)
    await t.setFault('heavydb', null);
    await t.setFault('parquet', { mode: 'fail' });
    t.writeIni(iniWith({ dual_write: 'true', phase: 'dual-write' }));
    await t.reload();
    await until(t.health, (r) => r.status === 200 && r.body.includes('parquet=fail'), 'healthy with parquet=fail');
    const dual = await t.seedJobs(3, 'queue');
    await t.waitForDrain();
    expect(await t.jobIds('completed')).toEqual(expect.arrayContaining(dual));
    expect(await t.metric('jobs_dual_write_failed_total', { backend: 'parquet' })).toBe(3);
    await t.setFault('parquet', null);
    expect(await t.health()).toEqual({ status: 200, body: 'healthy\n' });

    // wedge: unhealthy and not processing until restarted
    await t.wedge();
    expect((await t.health()).body).toContain('wedged');
    expect(await t.metric('job_processor_wedged')).toBe(1);
    await t.seedJobs(3, 'queue');
    await new Promise((r) => setTimeout(r, 300));
    expect((await t.counts()).queue).toBe(3);
    await t.service.restart();
    await t.waitHealthy();
    await t.waitForDrain();
    expect((await t.counts()).queue).toBe(0);
  });

  it("takes what the runbooks' INI store writes: [data_backend] changed, every other byte as it was", async () => {
    const t = await jobTarget(h);
    const store = new IniConfigStore(t.ini);
    const phase = {
      'data_backend.primary': 'heavydb',
      'data_backend.dual_write': 'true',
      'data_backend.cutover_percent': '25',
      'data_backend.phase': 'cut-over',
    };
    expect(await store.write(phase)).toEqual({ changed: true });
    expect(t.readIni()).toBe(iniWith({ dual_write: 'true', cutover_percent: '25', phase: 'cut-over' }));
    await t.reload();
    await until(
      () => t.metric('job_processor_config_info', { dual_write: 'true', cutover_percent: '25' }),
      (n) => n === 1,
      'the processor reads the rewritten INI',
    );
    // the checkpoints' other keys are in the file too
    expect(await store.read(['validation.validation_enabled', 'deployment.environment'])).toEqual({
      'validation.validation_enabled': 'true',
      'deployment.environment': 'blue',
    });
  });

  it('finishes the job in flight on SIGTERM', async () => {
    const t = await jobTarget(h, { workMs: 400, concurrency: 1 });
    await t.seedJobs(3, 'queue');
    await until(
      () => t.logLines().filter((l) => l.includes('Processing job')).length,
      (n) => n === 1,
      'first claim',
    );
    await t.stopService();
    const counts = await t.counts();
    expect(counts).toEqual({ queue: 2, processing: 0, failed: 0, completed: 1 });
    expect(t.logLines().filter((l) => l.includes('Completed job'))).toHaveLength(1);
  });

  it('takes jobs from a Postgres table the same way', async () => {
    const t = await jobTarget(h, { postgres: true });
    const stuck = await t.seedJobs(2, 'processing', { ageMs: 2 * 3600_000 });
    await t.seedJobs(3, 'failed');
    const ids = await t.seedJobs(200, 'queue');
    const replayed = await t.seedJobs(2, 'queue', { replayKey: 'wf/run/r' });
    await t.waitForDrain();
    expect(await t.counts()).toEqual({ queue: 0, processing: 2, failed: 3, completed: 202 });
    expect(await t.jobIds('processing')).toEqual(stuck);
    const done = completed(t);
    expect([...done.keys()].sort()).toEqual([...ids, ...replayed].sort());
    for (const id of replayed) {
      expect(done.get(id)?.replay).toBe(replayTag('wf/run/r'));
      const run = t.outputs().find((r) => r.run === done.get(id)!.output)!;
      expect(run.files[`optimization_summary_${id}.txt`]).toContain(`replay: ${replayTag('wf/run/r')}\nEND\n`);
    }
    await t.setFault('heavydb', { mode: 'fail' });
    const [fails] = await t.seedJobs(1, 'queue');
    await t.waitForDrain();
    expect(await t.jobIds('failed')).toContain(fails);
    expect(t.duplicates()).toBe(0);
  });
});
