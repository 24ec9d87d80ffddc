import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join, relative } from 'node:path';
import pg from 'pg';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../src/activities/digest.js';
import { targetLockId } from '../src/shared/messages.js';
import { RUNBOOKS } from '../src/shared/runbooks.js';
import { FEATURE_FLAG_MODES } from '../src/shared/schemas.js';
import type { RunbookResult } from '../src/shared/types.js';
import { cleanupTarget } from './support/cleanup.js';
import { pairTarget, startDualWrite } from './support/dual-write.js';
import { corruptOutputs, startRecovery } from './support/output-recovery.js';
import { Harness } from './support/harness.js';
import { startReplay, writeGapLog } from './support/job-replay.js';
import { jobTarget } from './support/migration.js';
import { pgBackup, pgTarget, startPgRunbook } from './support/postgres.js';
import { readCalls } from './fakes/make-fake.js';
import { saveHistory } from './support/histories.js';
import { sqliteTarget, startRunbook, type SqliteTargetOptions, type SqliteTestTarget } from './support/sqlite.js';
import { triageTarget } from './support/triage.js';

/**
 * A dry run changes nothing: not a flag, not a file, not a row — in every runbook. Each runbook the CLI can start
 * has a case here (the first test fails when one is added without one).
 */
const h = new Harness();
let pool: pg.Pool;
beforeAll(async () => {
  await h.start();
  pool = new pg.Pool({ connectionString: h.databaseUrl });
});
afterAll(async () => {
  await pool.end();
  await h.close();
});

/** Every file below `dir` (but `skip`) by path, as its digest and mode. */
function filesBelow(dir: string, skip: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, entry);
    if (skip.some((s) => path.startsWith(s)) || !statSync(path).isFile()) continue;
    out[relative(dir, path)] = `${sha256(readFileSync(path))} ${statSync(path).mode.toString(8)}`;
  }
  return out;
}

async function rows(table: string): Promise<string> {
  const r = await pool.query(`SELECT * FROM "${table}" ORDER BY 1, 2`);
  return JSON.stringify(r.rows);
}

/** The target lock's run and history length (the backup before a dry run took it once). */
async function lockState(environment: string, target: string) {
  const d = await h.client.workflow.getHandle(targetLockId(environment, target)).describe();
  return { runId: d.runId, status: d.status.name, historyLength: d.historyLength };
}

/** Nobody took the target: a dry run asks for no lock. */
async function noLockTaken(environment: string, target: string): Promise<void> {
  const lock = await h.client.workflow
    .getHandle(targetLockId(environment, target))
    .describe()
    .catch(() => undefined);
  expect(lock).toBeUndefined();
}

/**
 * A SQLite runbook's dry run on a stopped demo application (its files at rest): the database, its companions,
 * the flag file, the backups and forensics directories are byte-identical after, and no lock was taken.
 */
async function sqliteDryRun(
  runbook: string,
  input: Record<string, unknown> = {},
  setup: { target?: SqliteTargetOptions; prepare?: (t: SqliteTestTarget) => void } = {},
): Promise<RunbookResult> {
  const t = await sqliteTarget(h, { seedBytes: 1_000_000, start: false, ...setup.target });
  // a backup to choose from, and a database that is not the backup
  await (await startRunbook(h, 'sqlite-backup', { environment: t.envName })).result();
  // what the runbook acts on (a damaged page, …), after the backup
  setup.prepare?.(t);
  const dir = join(t.dataDir, '..');
  const before = filesBelow(dir);
  const lockBefore = await lockState(t.envName, 'app');
  const handle = await startRunbook(h, runbook, { environment: t.envName, dryRun: true, ...input });
  const result = (await handle.result()) as RunbookResult;
  expect(result.outcome, runbook).toBe('dry_run');
  expect(result.compensations).toEqual([]);
  expect(filesBelow(dir), runbook).toEqual(before);
  expect((await t.health()).status, 'the service stayed stopped').toBe(0);
  expect(await lockState(t.envName, 'app'), 'the target lock was not asked').toEqual(lockBefore);
  return result;
}

/**
 * A Postgres runbook's dry run: the backups directory is byte-identical, the server has the same databases and the
 * target's rows, kubectl was not asked to scale, and no lock was taken.
 */
async function postgresDryRun(runbook: 'postgres-backup' | 'postgres-restore'): Promise<RunbookResult> {
  const t = await pgTarget(h, { rows: 20 });
  await pgBackup(h, t);
  const state = async () => ({
    files: filesBelow(t.backupsDir),
    databases: await t.databases(),
    teams: await t.query('SELECT * FROM organizations_team ORDER BY id'),
    scales: readCalls(t.kubeDir, 'kubectl').filter((c) => c[0] === 'scale').length,
  });
  const before = await state();
  const lockBefore = await lockState(t.envName, 'db');
  const result = (await (await startPgRunbook(h, runbook, t, { dryRun: true })).result()) as RunbookResult;
  expect(result.outcome, runbook).toBe('dry_run');
  expect(result.compensations).toEqual([]);
  expect(await state(), runbook).toEqual(before);
  expect(await lockState(t.envName, 'db'), 'the target lock was not asked').toEqual(lockBefore);
  return result;
}

const CASES: Record<string, () => Promise<void>> = {
  triage: async () => {
    // symptoms taken, the chain proposed: no child started, no flag written, no lock taken
    const t = await triageTarget(h);
    const handle = await startRunbook(h, 'triage', {
      environment: t.envName,
      target: 'web',
      symptoms: ['errors-500', 'latency-2x'],
      dryRun: true,
    });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('dry_run');
    expect(result.plan!.summary).toMatch(/^errors-500 \(IMMEDIATE\), latency-2x \(HIGH\) → run 1\/2: /);
    expect(result.extra!.children).toEqual([]);
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);
    expect((await t.stats()).reloads).toBe(0);
    const child = await h.client.workflow
      .getHandle(`${handle.workflowId}--1-feature-flag-rollback`)
      .describe()
      .catch(() => 'never started');
    expect(child).toBe('never started');
    await noLockTaken(t.envName, 'web');
    await saveHistory(h.client, handle.workflowId, 'dry-run', 'triage');
  },
  'postgres-backup': async () => {
    const result = await postgresDryRun('postgres-backup');
    expect(result.plan!.summary).toMatch(/^pg_dump pgr_\d+_\d+ .* with a signed manifest/);
    expect(result.steps.find((s) => s.name === 'dump')).toMatchObject({ status: 'skipped' });
  },
  'postgres-restore': async () => {
    const result = await postgresDryRun('postgres-restore');
    expect(result.plan!.summary).toMatch(/^restore pgr_\d+_\d+ from pgr-\d+-\d+_\S+\.dump taken .*every write after/);
    expect(result.steps.find((s) => s.name === 'swap')).toMatchObject({ status: 'skipped' });
  },
  'output-recovery': async () => {
    // corrupt outputs, some restorable: a real run would stop the processor, quarantine, restore and replay
    const { t } = await corruptOutputs(h);
    const before = filesBelow(t.dataDir);
    const pid = (await t.stats()).pid;
    const handle = await startRecovery(h, t, { dryRun: true });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('dry_run');
    expect(result.plan!.summary).toMatch(/^quarantine 7 corrupt output runs .* restore 3 from .* replay 4 jobs/);
    expect(result.steps.find((s) => s.name === 'quarantine outputs')).toMatchObject({ status: 'skipped' });
    expect(result.compensations).toEqual([]);
    expect(filesBelow(t.dataDir)).toEqual(before);
    expect((await t.stats()).pid).toBe(pid);
    await noLockTaken(t.envName, 'jobs');
    await saveHistory(h.client, handle.workflowId, 'dry-run', 'output-recovery');
  },
  'test-data-cleanup': async () => {
    // identify only: no row deleted, no id file written (the plan holds the digest, counts and a sample), no lock
    const t = await cleanupTarget(h, pool);
    const before = await t.snapshot();
    const handle = await startRunbook(h, 'test-data-cleanup', {
      environment: t.envName,
      target: 'cleanup',
      dryRun: true,
    });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('dry_run');
    expect(result.plan!.summary).toMatch(/^delete 27 rows of test data on .* in one transaction/);
    expect(result.steps.find((s) => s.name === 'identify')!.result).toMatch(/\(dry run: not written\)$/);
    expect(result.compensations).toEqual([]);
    expect(await t.snapshot()).toEqual(before);
    expect(existsSync(t.workDir)).toBe(false);
    await noLockTaken(t.envName, 'cleanup');
  },
  'backend-phase-switch': async () => {
    // the processor at rest: its INI file, spool, logs and last-known-good directory are byte-identical after
    const t = await jobTarget(h, { start: false });
    for (const input of [{ to: 'cut-over', percent: 50 }, { checkpoint: '2.3' }]) {
      const before = filesBelow(t.dataDir);
      const handle = await startRunbook(h, 'backend-phase-switch', {
        environment: t.envName,
        target: 'jobs',
        dryRun: true,
        ...input,
      });
      const result = (await handle.result()) as RunbookResult;
      expect(result.outcome).toBe('dry_run');
      expect(result.compensations).toEqual([]);
      expect(filesBelow(t.dataDir)).toEqual(before);
      await noLockTaken(t.envName, 'jobs');
    }
  },
  'sqlite-backup': async () => {
    const result = await sqliteDryRun('sqlite-backup', { tag: 'dry' });
    expect(result.plan!.summary).toMatch(/^back up .*abathur\.db/);
  },
  'sqlite-milestone-rollback': async () => {
    const result = await sqliteDryRun('sqlite-milestone-rollback', { milestone: 'vector' });
    expect(result.plan!.summary).toMatch(/^roll back milestone "vector" .* in one transaction/);
    expect(result.plan!.details!.statements).toContain('DROP TABLE IF EXISTS "document_embeddings"');
    expect(result.plan!.changes.map((c) => c.item)).toContain('flag SEMANTIC_SEARCH_ENABLED');
  },
  'sqlite-recovery': async () => {
    // a damaged page: the plan would .recover (or restore the backup); nothing runs, nothing is written anywhere
    const damage = (t: SqliteTestTarget) => {
      const fd = openSync(t.db, 'r+');
      writeSync(fd, Buffer.alloc(8192, 0xa5), 0, 8192, Math.floor(statSync(t.db).size / 8192) * 4096);
      closeSync(fd);
    };
    const corruption = await sqliteDryRun('sqlite-recovery', { scenario: 'corruption' }, { prepare: damage });
    expect(corruption.plan!.summary).toMatch(/^database corruption on .*(\.recover|restore the latest verified)/);
    expect(corruption.steps.find((s) => s.name === 'recover')).toMatchObject({ status: 'skipped' });
    const space = { sqlite: { space: { minFree: 2 ** 52 } } };
    const diskFull = await sqliteDryRun('sqlite-recovery', { scenario: 'disk-full' }, { target: space });
    expect(diskFull.plan!.summary).toMatch(/^disk space on .*checkpoint \(TRUNCATE\)/);
    const wal = await sqliteDryRun('sqlite-recovery', { scenario: 'wal' });
    expect(wal.steps.find((s) => s.name === 'seal plan')!.result).toMatch(/no WAL content/);
  },
  'sqlite-restore': async () => {
    const result = await sqliteDryRun('sqlite-restore', { integrityCheck: true });
    expect(result.plan!.summary).toMatch(/^restore .*abathur\.db from abathur_.*\.db\.gz taken .*every write after/);
    expect(result.steps.find((s) => s.name === 'stop services')).toMatchObject({ status: 'skipped' });
  },
  'sqlite-fresh-start': async () => {
    const result = await sqliteDryRun('sqlite-fresh-start');
    expect(result.plan!.summary).toMatch(
      /^delete .*abathur\.db .* and initialise it again from sql file .*schema\.sql/,
    );
    expect(result.steps.find((s) => s.name === 'delete database')).toMatchObject({ status: 'skipped' });
  },
  'feature-flag-rollback': async () => {
    for (const mode of FEATURE_FLAG_MODES) {
      const t = await h.demoTarget();
      const flagsBefore = await t.liveFlags();
      const handle = await h.startRun({ environment: t.envName, mode, dryRun: true });
      const result = (await handle.result()) as RunbookResult;
      expect(result.outcome, mode).toBe('dry_run');
      expect(result.steps.find((s) => s.name === 'lock target')).toMatchObject({ status: 'skipped' });
      expect(readFileSync(t.envFile, 'utf8'), mode).toBe(t.initialFlags);
      expect(await t.liveFlags()).toEqual(flagsBefore);
      expect((await t.stats()).reloads).toBe(0);
      await noLockTaken(t.envName, 'web');
    }
  },
  'dual-write-rollback': async () => {
    // critical drift with a haltTarget: a real run would halt dual writes first; a dry run only says it would
    for (const pair of ['sqlite-objectstore', 'postgres-objectstore', 'postgres-sqlite'] as const) {
      const web = await h.demoTarget();
      const webTarget = parseYaml(readFileSync(join(h.environmentsDir, `${web.envName}.yaml`), 'utf8')).targets.web;
      const t = await pairTarget(
        h,
        pool,
        pair,
        { objects: 60, drift: { content_mismatch: 3, missing_in_a: 2, missing_in_b: 2 }, newer: 'b' },
        { haltTarget: 'web' },
        { web: webTarget },
      );
      const config = parseYaml(readFileSync(join(h.environmentsDir, `${t.envName}.yaml`), 'utf8')).targets.objects
        .dualWrite;
      const dir = join(h.root, 'dw', t.envName);
      const tables = [config.a, config.b].filter((s) => s.type === 'postgres').map((s) => s.table as string);
      // the test's own handles go first: SQLite files as nobody has them open
      await Promise.all([t.a.close(), t.b.close()]);
      const before = { files: filesBelow(dir, [join(dir, 'work')]), rows: await Promise.all(tables.map(rows)) };
      const handle = await startDualWrite(h, t, { dryRun: true });
      const result = (await handle.result()) as RunbookResult;
      expect(result.outcome, pair).toBe('dry_run');
      expect(result.plan!.summary).toMatch(
        new RegExp(`severity critical.*; would halt dual writes on ${t.envName}/web first$`),
      );
      expect(result.steps.find((s) => s.name === 'halt dual writes')).toMatchObject({
        status: 'skipped',
        result: `dry run: would halt dual writes on ${t.envName}/web`,
      });
      expect(result.compensations).toEqual([]);
      expect(readFileSync(web.envFile, 'utf8'), pair).toBe(web.initialFlags);
      expect((await web.stats()).reloads).toBe(0);
      expect({ files: filesBelow(dir, [join(dir, 'work')]), rows: await Promise.all(tables.map(rows)) }, pair).toEqual(
        before,
      );
      await noLockTaken(t.envName, 'objects');
      if (pair === 'postgres-objectstore') {
        await saveHistory(h.client, handle.workflowId, 'dry-run-would-halt', 'dual-write-rollback');
      }
      await noLockTaken(t.envName, 'web');
    }
  },
  'dual-write-check': async () => {
    // detection only, and a dry run ends at the sealed plan: no state, no diff file, no lock
    const t = await pairTarget(h, pool, 'postgres-objectstore', { objects: 40, drift: { content_mismatch: 2 } });
    await Promise.all([t.a.close(), t.b.close()]);
    const dir = join(h.root, 'dw', t.envName);
    const before = { files: filesBelow(dir), rows: await rows(t.where[0]) };
    const handle = await startRunbook(h, 'dual-write-check', {
      environment: t.envName,
      target: 'objects',
      dryRun: true,
    });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('dry_run');
    expect(result.plan!.summary).toMatch(/^compare postgres and store of .*\(detection only: nothing is changed\)/);
    expect(result.steps.find((s) => s.name === 'detect')).toMatchObject({ status: 'skipped' });
    expect({ files: filesBelow(dir), rows: await rows(t.where[0]) }).toEqual(before);
    await noLockTaken(t.envName, 'objects');
  },
  'emergency-ladder': async () => {
    // a wedged processor: a real run would restart it (level 1) and could go on to the configuration
    const t = await jobTarget(h);
    await t.wedge();
    const pid = (await t.stats()).pid;
    const skip = [t.logDir, t.logFile];
    const before = filesBelow(t.dataDir, skip);
    const handle = await startRunbook(h, 'emergency-ladder', { environment: t.envName, target: 'jobs', dryRun: true });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('dry_run');
    expect(result.plan!.summary).toMatch(/^emergency ladder for .*\/jobs from level 1: L1 restart \(automatic\)/);
    expect(result.steps.find((s) => s.name === 'level 1 restart')).toMatchObject({ status: 'skipped' });
    expect(result.approval.stages).toBeUndefined();
    expect(result.compensations).toEqual([]);
    expect(filesBelow(t.dataDir, skip)).toEqual(before);
    expect((await t.stats()).pid, 'not restarted').toBe(pid);
    expect((await t.health()).status, 'still wedged').toBe(503);
    await noLockTaken(t.envName, 'jobs');
  },
  'job-replay': async () => {
    // failed, stuck, incomplete and gap jobs at rest: a dry run plans them (digest, counts) and writes nothing
    const t = await jobTarget(h, { start: false });
    await t.seedJobs(4, 'failed', { prefix: 'f' });
    await t.seedJobs(2, 'processing', { prefix: 's', ageMs: 2 * 3600_000 });
    const [gap] = await t.seedJobs(2, 'completed', { prefix: 'c' });
    writeGapLog(t.logDir, [gap!]);
    const before = filesBelow(t.dataDir);
    const handle = await startReplay(h, t, { dryRun: true });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('dry_run');
    expect(result.plan!.summary).toMatch(
      /^requeue 8 jobs of spool .* \(failed 4, stuck 2, incomplete 2\) exactly once/,
    );
    expect(result.steps.find((s) => s.name === 'requeue jobs')).toMatchObject({ status: 'skipped' });
    expect(filesBelow(t.dataDir)).toEqual(before);
    await noLockTaken(t.envName, 'jobs');
    await saveHistory(h.client, handle.workflowId, 'dry-run', 'job-replay');
  },
  'sqlite-drill': async () => {
    const result = await sqliteDryRun('sqlite-drill');
    expect(result.plan!.summary).toMatch(
      /^drill: restore abathur_\S+\.db\.gz \(.*\) into \S+\/drills\/\S+\/, never the live /,
    );
    expect(result.steps.find((s) => s.name === 'restore into sandbox')).toMatchObject({ status: 'skipped' });
  },
};

describe('a dry run of every runbook leaves every target byte-identical', () => {
  it('has a case for every runbook the CLI can start', () => {
    expect(Object.keys(CASES).sort()).toEqual(Object.keys(RUNBOOKS).sort());
  });

  it.each(Object.keys(CASES))('%s', async (name) => {
    await CASES[name]!();
  });
});
