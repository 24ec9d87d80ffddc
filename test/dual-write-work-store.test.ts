import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { pino } from 'pino';
import { createDualWriteActivities, type FileRef, type RepairAction } from '../src/activities/dual-write/index.js';
import { LocalWorkStore } from '../src/activities/dual-write/work-store/local.js';
import { PostgresWorkStore } from '../src/activities/dual-write/work-store/postgres.js';
import { readLines, writeLines } from '../src/activities/dual-write/work-store/index.js';
import { loadTarget, EnvironmentError } from '../src/activities/environment.js';
import { sha256 } from '../src/activities/digest.js';
import { StoreFactory } from '../src/activities/stores/index.js';
import { ErrorType } from '../src/shared/constants.js';
import type { RunbookResult } from '../src/shared/types.js';
import {
  abortDuringExecute,
  approveWhenReady,
  differences,
  dualWriteSuite,
  everything,
  pairTarget,
  startDualWrite,
} from './support/dual-write.js';

const { h, pool } = dualWriteSuite();
const stores = new StoreFactory();
afterAll(() => stores.close());

/** a table prefix of this file's own */
const table = `dr_work_t${process.pid}`;
const workStore = { type: 'postgres', urlEnv: 'DEMO_DATABASE_URL', table };

/** The failure an activity (or a work store call) threw. */
async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApplicationFailure);
  return error as ApplicationFailure;
}

async function all<T>(lines: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const l of lines) out.push(l);
  return out;
}

describe('work files in Postgres (dualWrite.workStore)', () => {
  it('a whole rollback keeps every work file in Postgres: the plan is read back from there, nothing is written on the host', async () => {
    const t = await pairTarget(
      h,
      pool,
      'postgres-objectstore',
      {
        objects: 200,
        drift: { missing_in_a: 3, missing_in_b: 4, content_mismatch: 5, metadata_mismatch: 2 },
        newer: 'a',
      },
      { workStore },
    );
    const handle = await startDualWrite(h, t);
    await approveWhenReady(h, handle);
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect(await differences(t)).toBe(0);
    const evidence = JSON.parse(readFileSync(result.evidence!.path, 'utf8'));
    const plan = evidence.extra.plan as FileRef & { total: number };
    expect(plan.path).toMatch(new RegExp(`^postgres:${table}/.+/repair-plan\\.jsonl$`));
    for (const ref of [evidence.extra.detection, evidence.extra.isolation, evidence.extra.snapshot])
      expect(ref.path).toMatch(new RegExp(`^postgres:${table}/`));
    expect(evidence.extra.artifacts.rollback.path).toMatch(/assurance\/dual_write_rollback_\d{8}\.json$/);
    // the plan as the repair read it: from Postgres, checked against the digest the workflow recorded
    const runKey = plan.path.slice(`postgres:${table}/`.length, -'/repair-plan.jsonl'.length);
    const work = new PostgresWorkStore(pool, table, runKey);
    const actions = await all(await readLines<RepairAction>(work, plan));
    expect(actions).toHaveLength(14);
    expect(actions.map((a) => `${a.objectId}@${a.version}`).sort()).toEqual(
      t.injected.map((e) => `${e.objectId}@${e.version}`).sort(),
    );
    const artifact = JSON.parse(
      Buffer.concat(await all(work.bytes(evidence.extra.artifacts.verification))).toString('utf8'),
    );
    expect(artifact.remaining_differences).toBe(0);
    expect(existsSync(t.workDir)).toBe(false);
  });

  it('an abort during execute restores the target byte-identical from the snapshot in Postgres', async () => {
    const t = await pairTarget(
      h,
      pool,
      'sqlite-objectstore',
      { objects: 300, drift: { content_mismatch: 40, missing_in_a: 10, missing_in_b: 10 }, newer: 'a' },
      { workStore, batchSize: 5, parallelism: 1, batchPause: '150ms' },
    );
    const before = await everything(t.b);
    const { result } = await abortDuringExecute(h, t, 500);
    expect(result.outcome).toBe('aborted');
    expect(result.compensations.map((c) => [c.step, c.status])).toEqual([['snapshot', 'succeeded']]);
    expect(await everything(t.b)).toEqual(before);
    expect(await differences(t)).toBe(60);
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${table}_blobs`);
    expect(rows[0].n).toBeGreaterThan(0);
    expect(existsSync(t.workDir)).toBe(false);
  });

  it('streams files of many chunks (lines and characters across chunk boundaries); a rewrite replaces the file whole', async () => {
    const work = new PostgresWorkStore(pool, table, `chunks-${Date.now()}`);
    // ~2.6 MiB of lines with multi-byte characters: three 1 MiB chunks, cut inside lines and characters
    const rows = Array.from({ length: 12_000 }, (_, i) => ({ i, text: `é€😀 ${'x'.repeat(200 + (i % 37))}` }));
    const written = await writeLines(work, 'big.jsonl', rows);
    expect(written.lines).toBe(12_000);
    expect(written.bytes).toBeGreaterThan(2 * 1024 * 1024);
    const { rows: chunks } = await pool.query(`SELECT count(*)::int AS n FROM ${table}_chunks WHERE run_key = $1`, [
      work['runKey'],
    ]);
    expect(chunks[0].n).toBe(3);
    expect(await all(await readLines(work, written))).toEqual(rows);

    const again = await writeLines(work, 'big.jsonl', rows.slice(0, 10));
    expect(await all(await readLines(work, again))).toEqual(rows.slice(0, 10));
    const { rows: left } = await pool.query(`SELECT count(*)::int AS n FROM ${table}_chunks WHERE run_key = $1`, [
      work['runKey'],
    ]);
    expect(left[0].n).toBe(1);
    // the first version is gone: its digest no longer matches what is stored
    expect((await failureOf(work.check(written))).type).toBe(ErrorType.EvidenceMismatch);
  });

  it('a tampered chunk, a corrupt blob or a file that is not there are EvidenceMismatch, not retried', async () => {
    const runKey = `tamper-${Date.now()}`;
    const work = new PostgresWorkStore(pool, table, runKey);
    const ref = await writeLines(work, 'plan.jsonl', [{ a: 1 }, { a: 2 }]);
    await pool.query(`UPDATE ${table}_chunks SET data = $1 WHERE run_key = $2`, [
      Buffer.from('{"a":1}\n{"a":3}\n'),
      runKey,
    ]);
    const tampered = await failureOf(work.check(ref));
    expect(tampered.type).toBe(ErrorType.EvidenceMismatch);
    expect(tampered.nonRetryable).toBe(true);
    expect(tampered.message).toContain(ref.path);

    const missing = await failureOf(work.check({ ...ref, path: `postgres:${table}/${runKey}/nope.jsonl` }));
    expect(missing.type).toBe(ErrorType.EvidenceMismatch);
    const elsewhere = await failureOf(work.check({ ...ref, path: `postgres:${table}/another-run/plan.jsonl` }));
    expect(elsewhere.message).toContain('is not a work file of this run');

    const content = Buffer.from('snapshot content');
    const digest = sha256(content);
    await work.putBlobs([{ sha256: digest, content }]);
    await pool.query(`UPDATE ${table}_blobs SET data = $1 WHERE run_key = $2`, [Buffer.from('rotten'), runKey]);
    const corrupt = await failureOf(work.getBlobs([{ sha256: digest, size: content.length, what: 'obj@1' }]));
    expect(corrupt.type).toBe(ErrorType.EvidenceMismatch);
    expect(corrupt.message).toContain('obj@1');
    // writing the blob again replaces the corrupt copy (an existing blob is kept only when intact)
    await work.putBlobs([{ sha256: digest, content }]);
    expect((await work.getBlobs([{ sha256: digest, size: content.length, what: 'obj@1' }])).get(digest)).toEqual(
      content,
    );
    const bad = await failureOf(work.getBlobs([{ sha256: '../../etc/passwd', size: 1, what: 'obj@2 on store' }]));
    expect(bad.type).toBe(ErrorType.InvalidDigest);
    expect(bad.message).toContain('obj@2 on store');
  });
});

describe('work files on the worker host (dualWrite.workDir)', () => {
  const activities = () =>
    createDualWriteActivities({ environmentsDir: h.environmentsDir, stores, log: pino({ level: 'silent' }) });
  const run = <A, R>(fn: (arg: A) => Promise<R>, arg: A): Promise<R> =>
    new MockActivityEnvironment().run<[A], R, (arg: A) => Promise<R>>(fn, arg);

  it('a work file written on another host is WorkFileMissing, retryable, naming both hosts, the path and the fix', async () => {
    const t = await pairTarget(h, pool, 'sqlite-objectstore', { objects: 10, drift: { missing_in_b: 1 } });
    const runKey = 'elsewhere';
    const path = join(t.workDir, runKey, 'detect-diff.jsonl');
    const failure = await failureOf(
      run(activities().isolateDrift, {
        environment: t.envName,
        target: 'objects',
        runKey,
        diff: { path, sha256: 'a'.repeat(64), host: 'worker-7' },
      }),
    );
    expect(failure.type).toBe(ErrorType.WorkFileMissing);
    expect(failure.nonRetryable).toBe(false);
    expect(failure.message).toContain(path);
    expect(failure.message).toContain('written on worker-7');
    expect(failure.message).toContain(`this worker's host ${hostname()}`);
    expect(failure.message).toMatch(/share the target's workDir .*workStore: \{ type: postgres/);
  });

  it('a work file whose bytes changed is EvidenceMismatch, not retried; work files are 0600 in 0700 directories', async () => {
    const t = await pairTarget(h, pool, 'sqlite-objectstore', { objects: 10, drift: { missing_in_b: 1 } });
    const work = new LocalWorkStore(t.workDir, 'run/1');
    const ref = await writeLines(work, 'detect-diff.jsonl', [{ objectId: 'x', version: 1 }]);
    expect(ref.path).toBe(join(t.workDir, 'run_1', 'detect-diff.jsonl'));
    expect(ref.host).toBe(hostname());
    const { statSync } = await import('node:fs');
    expect(statSync(ref.path).mode & 0o777).toBe(0o600);
    expect(statSync(join(t.workDir, 'run_1')).mode & 0o777).toBe(0o700);
    writeFileSync(ref.path, '{"objectId":"y","version":1}\n');
    const failure = await failureOf(
      run(activities().planRepair, {
        environment: t.envName,
        target: 'objects',
        runKey: 'run/1',
        diff: ref,
        policy: 'postgres-authoritative',
      }),
    );
    expect(failure.type).toBe(ErrorType.EvidenceMismatch);
    expect(failure.nonRetryable).toBe(true);
  });

  it('exactly one of workDir and workStore: neither or both is refused naming the field', async () => {
    const t = await pairTarget(h, pool, 'sqlite-objectstore', { objects: 5, drift: {} });
    const file = join(h.environmentsDir, `${t.envName}.yaml`);
    const original = readFileSync(file, 'utf8');
    const workDirLine = /^ +workDir: .*\n/m.exec(original)![0];
    writeFileSync(file, original.replace(workDirLine, ''));
    await expect(loadTarget(h.environmentsDir, t.envName, 'objects')).rejects.toThrow(
      /targets\.objects\.dualWrite\.workDir: give exactly one of workDir .* and workStore/,
    );
    writeFileSync(
      file,
      original.replace(
        workDirLine,
        `${workDirLine}${workDirLine.replace(/workDir: .*/, 'workStore: { type: postgres }')}`,
      ),
    );
    const both = await loadTarget(h.environmentsDir, t.envName, 'objects').catch((e: unknown) => e);
    expect(both).toBeInstanceOf(EnvironmentError);
    expect((both as Error).message).toContain('targets.objects.dualWrite.workStore: give exactly one of workDir');
  });
});

describe('passes over work files resume after a crash', () => {
  const activities = () =>
    createDualWriteActivities({ environmentsDir: h.environmentsDir, stores, log: pino({ level: 'silent' }) });

  /** Runs `fn` as an attempt whose predecessor heartbeated `details`; returns its result (or failure) and heartbeats. */
  async function attempt<A, R>(fn: (arg: A) => Promise<R>, arg: A, details?: unknown) {
    const env = new MockActivityEnvironment(details === undefined ? {} : { heartbeatDetails: details });
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const result = await env.run<[A], R, (arg: A) => Promise<R>>(fn, arg).then(
      (value): { value?: R; error?: unknown } => ({ value }),
      (error: unknown): { value?: R; error?: unknown } => ({ error }),
    );
    return { ...result, beats };
  }

  it.each(['workDir', 'workStore'] as const)(
    '%s: planRepair killed after its first page goes on from there; the plan equals an uninterrupted one',
    async (kind) => {
      const t = await pairTarget(
        h,
        pool,
        'sqlite-objectstore',
        { objects: 5, drift: {} },
        kind === 'workStore' ? { workStore } : {},
      );
      const target = { environment: t.envName, target: 'objects' };
      const work = openWork(t, kind, 'resume');
      // 12 000 differences: three pages of 5000; the crash is a line the first attempt cannot parse in page two
      const entries = Array.from({ length: 12_000 }, (_, i) => ({
        objectId: `obj-${String(i).padStart(6, '0')}`,
        version: 1,
        class: 'missing_in_b',
        a: {
          objectId: `obj-${String(i).padStart(6, '0')}`,
          version: 1,
          sha256: 'a'.repeat(64),
          size: 1,
          createdAt: 1,
          updatedAt: 2,
        },
      }));
      const text = entries.map((e) => JSON.stringify(e)).join('\n') + '\n';
      const clean = await work.writeText('detect-diff.jsonl', text);
      const expected = await attempt(activities().planRepair, {
        ...target,
        runKey: 'resume',
        diff: clean,
        policy: 'postgres-authoritative',
      });
      const broken = await work.writeText('detect-diff.jsonl', text.replace(/\n(.*obj-007000.*)\n/, '\n{broken\n'));
      const first = await attempt(activities().planRepair, {
        ...target,
        runKey: 'resume',
        diff: broken,
        policy: 'postgres-authoritative',
      });
      expect(first.error).toBeInstanceOf(SyntaxError);
      expect(first.beats).toHaveLength(1);
      expect(first.beats[0]).toMatchObject({ phase: 'plan', line: 5000, out: { lines: 5000 } });
      // the retry (the diff put right, its first page unchanged) starts after the page the first one heartbeated
      const fixed = await work.writeText('detect-diff.jsonl', text);
      const second = await attempt(
        activities().planRepair,
        { ...target, runKey: 'resume', diff: fixed, policy: 'postgres-authoritative' },
        first.beats[0],
      );
      expect(second.beats.map((b) => (b as { line: number }).line)).toEqual([10_000, 12_000]);
      const { path: _p, ...plan } = second.value!;
      const { path: _q, ...whole } = expected.value!;
      expect(plan).toEqual(whole);
      expect(plan.total).toBe(12_000);

      // a retry on a host without the first attempt's staging starts over, with the same result
      const elsewhere = await attempt(
        activities().planRepair,
        { ...target, runKey: 'resume', diff: fixed, policy: 'postgres-authoritative' },
        {
          ...(first.beats[0] as object),
          out: {
            ...(first.beats[0] as { out: object }).out,
            staging: kind === 'workDir' ? '.gone.staging' : '00000000-0000-4000-8000-000000000000',
          },
        },
      );
      expect(elsewhere.beats.map((b) => (b as { line: number }).line)).toEqual([5000, 10_000, 12_000]);
      expect(elsewhere.value!.sha256).toBe(plan.sha256);
    },
  );
});

function openWork(t: { workDir: string }, kind: 'workDir' | 'workStore', runKey: string) {
  return kind === 'workDir' ? new LocalWorkStore(t.workDir, runKey) : new PostgresWorkStore(pool, table, runKey);
}
