import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../src/shared/constants.js';
import Database from 'better-sqlite3';
import { manifestPath, writeManifest, type BackupManifest } from '../src/activities/sqlite/backup-files.js';
import { sqlite3Status } from '../src/activities/sqlite/recover.js';
import { approveSignal } from '../src/shared/messages.js';
import type { RunbookResult } from '../src/shared/types.js';
import { Harness } from './support/harness.js';
import { saveHistory } from './support/histories.js';
import { sqliteTarget, startRunbook, type SqliteTestTarget } from './support/sqlite.js';
import { until } from './support/wait.js';

/**
 * sqlite-recovery (seed §4.1 corruption, §4.2 WAL, §4.3 disk space) on the demo application. The .recover path
 * needs a sqlite3 whose SQLite has sqlite_dbpage (SQLITE3_BIN, else the shell `npm run setup` builds into
 * .tools/bin, else sqlite3 on PATH): the suite requires one, and the fallback cases run either way.
 */
const h = new Harness();
const sqlite3 = await sqlite3Status();
beforeAll(() => h.start());
afterAll(() => h.close());

const step = (r: RunbookResult, name: string) => r.steps.find((s) => s.name === name)!;

async function approve(handle: WorkflowHandle): Promise<void> {
  const waiting = await h.waitForApproval(handle);
  await handle.signal(approveSignal, { by: 'alice', planHash: waiting.planHash! });
}

const healthy = (t: SqliteTestTarget) => until('health 200', async () => (await t.health()).status === 200);

async function backup(t: SqliteTestTarget): Promise<string> {
  const r = (await (await startRunbook(h, 'sqlite-backup', { environment: t.envName })).result()) as RunbookResult;
  expect(r.outcome).toBe('succeeded');
  return readdirSync(t.backupsDir).find((f) => f.endsWith('.db.gz'))!;
}

/**
 * Stops the service, overwrites 8 KiB of a table or index page in the middle of the file (or the header: not a
 * database any more), starts it: /health 503.
 */
async function corrupt(t: SqliteTestTarget, where: 'middle' | 'header' = 'middle'): Promise<void> {
  await t.stopService();
  const probe = new Database(t.db, { readonly: true });
  // a leaf page of `metrics` from the middle of the file: no table references it, so what .recover cannot
  // read loses metrics rows only and leaves no foreign key dangling (deterministic, unlike random pages)
  const page = probe
    .prepare(
      "SELECT pageno FROM dbstat WHERE name = 'metrics' AND pagetype = 'leaf' AND pageno >= ? ORDER BY pageno LIMIT 1",
    )
    .pluck()
    .get(Math.floor(statSync(t.db).size / 2 / 4096)) as number;
  probe.close();
  const fd = openSync(t.db, 'r+');
  if (where === 'header') writeSync(fd, Buffer.alloc(100, 0xa5), 0, 100, 0);
  else writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, (page - 1) * 4096);
  closeSync(fd);
  await t.service.start();
  await until('/health 503', async () => (await t.health()).status === 503, 30_000);
}

async function runRecovery(t: SqliteTestTarget, scenario: string, id?: string): Promise<RunbookResult> {
  const handle = await startRunbook(h, 'sqlite-recovery', { environment: t.envName, scenario }, id);
  await approve(handle);
  return (await handle.result()) as RunbookResult;
}

function liveIntegrity(t: SqliteTestTarget): string {
  const db = new Database(t.db, { readonly: true });
  try {
    return db.pragma('integrity_check', { simple: true }) as string;
  } finally {
    db.close();
  }
}

describe('sqlite recovery: corruption (§4.1)', () => {
  it('the worker has a sqlite3 that can .recover (npm run setup builds one where the system has none)', () => {
    expect(sqlite3.recover, sqlite3.problem).toBe(true);
  });

  it('pages overwritten: .recover into a new file, validated, installed', async () => {
    const t = await sqliteTarget(h, { seedBytes: 24_000_000 });
    const file = await backup(t);
    await corrupt(t);
    const id = `sqlite-recovery-corruption-${h.taskQueue}`;
    const result = await runRecovery(t, 'corruption', id);
    await saveHistory(h.client, id, 'corruption-recover', 'sqlite-recovery');
    expect(result.outcome, result.error).toBe('succeeded');
    const extra = result.extra as Record<string, any>;
    expect(extra.path, JSON.stringify(result.steps.map((s) => [s.name, s.result ?? s.error]))).toBe('recover');
    expect(step(result, 'assess').result).toMatch(/can \.recover/);
    expect(step(result, 'recover')).toMatchObject({ status: 'succeeded' });
    expect(step(result, 'recover').result).toMatch(/^\.recover: /);
    expect(step(result, 'validate recovered').result).toMatch(/^valid: integrity ok/);
    expect(step(result, 'install recovered')).toMatchObject({ status: 'succeeded' });
    expect(step(result, 'restore backup')).toMatchObject({
      status: 'skipped',
      result: 'the recovered copy was valid and is installed',
    });
    for (const s of ['validate', 'start services', 'health check', 'monitor'])
      expect(step(result, s).status, s).toBe('succeeded');
    // row counts against the backup's manifest are in the report
    expect(extra.recovered.rows.backup).toBe(file);
    expect(extra.recovered.rows.rows.tasks.recovered).toBeGreaterThan(0);
    expect(extra.rto.withinTarget).toBe(true);
    await healthy(t);
    expect(liveIntegrity(t)).toBe('ok');
    // the damaged files are kept
    expect(readdirSync(extra.forensicCopy)).toContain('abathur.db');
    expect(readdirSync(t.dataDir).filter((f) => f.includes('.recovered-'))).toEqual([]);
  });

  it('sqlite3 missing: the latest verified backup instead, and the run says so', async () => {
    const t = await sqliteTarget(h, { seedBytes: 20_000_000 });
    const file = await backup(t);
    const manifest = JSON.parse(readFileSync(manifestPath(t.backupsDir, file), 'utf8')) as BackupManifest;
    await corrupt(t);
    const saved = process.env.SQLITE3_BIN;
    process.env.SQLITE3_BIN = join(h.root, 'no-such-sqlite3');
    let result: RunbookResult;
    try {
      result = await runRecovery(t, 'corruption');
    } finally {
      if (saved === undefined) delete process.env.SQLITE3_BIN;
      else process.env.SQLITE3_BIN = saved;
    }
    expect(result.outcome, result.error).toBe('succeeded');
    const extra = result.extra as Record<string, any>;
    expect(extra.path).toBe('backup');
    expect(extra.backup).toBe(file);
    expect(extra.recoverProblem).toMatch(/is not installed/);
    expect(result.plan!.summary).toMatch(/restore the latest verified backup .*is not installed/);
    expect(step(result, 'recover')).toMatchObject({ status: 'skipped' });
    expect(step(result, 'recover').result).toMatch(/is not installed.*restore the latest backup instead/);
    expect(step(result, 'restore backup')).toMatchObject({ status: 'succeeded' });
    expect(step(result, 'restore backup').result).toContain(`restored ${file}`);
    await healthy(t);
    expect(liveIntegrity(t)).toBe('ok');
    const db = new Database(t.db, { readonly: true });
    expect(db.prepare('SELECT count(*) FROM tasks').pluck().get()).toBeGreaterThanOrEqual(manifest.rows.tasks!);
    db.close();
  });

  it('header destroyed: .recover cannot read the file, the latest backup instead', async () => {
    const t = await sqliteTarget(h, { seedBytes: 20_000_000 });
    const file = await backup(t);
    await corrupt(t, 'header');
    const result = await runRecovery(t, 'corruption');
    expect(result.outcome, result.error).toBe('succeeded');
    const extra = result.extra as Record<string, any>;
    expect(extra.path).toBe('backup');
    expect(extra.backup).toBe(file);
    expect(step(result, 'recover')).toMatchObject({ status: 'succeeded' });
    expect(step(result, 'recover').result).toMatch(
      /^\.recover failed: sqlite3 exited .*not a database.*; falls back to the latest backup$/,
    );
    expect(step(result, 'validate recovered').status).toBe('skipped');
    expect(step(result, 'restore backup').result).toContain(`restored ${file}`);
    await healthy(t);
    expect(liveIntegrity(t)).toBe('ok');
  });

  it('nothing wrong: "no corruption found", nothing changed', async () => {
    const t = await sqliteTarget(h, { seedBytes: 2_000_000 });
    const pid = (await t.stats()).pid;
    const result = (await (
      await startRunbook(h, 'sqlite-recovery', { environment: t.envName, scenario: 'corruption' })
    ).result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect((result.extra as Record<string, unknown>).path).toBe('none');
    expect(step(result, 'approval')).toMatchObject({ status: 'skipped' });
    expect(step(result, 'stop services').result).toMatch(/^no corruption found/);
    expect((await t.stats()).pid).toBe(pid);
  });

  it("a monitoring window shorter than the environment's is InvalidInput naming the field, before anything", async () => {
    const t = await sqliteTarget(h, { seedBytes: 2_000_000 });
    const pid = (await t.stats()).pid;
    const handle = await startRunbook(h, 'sqlite-recovery', {
      environment: t.envName,
      scenario: 'wal',
      monitorWindow: '1s',
    });
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause.type).toBe(ErrorType.InvalidInput);
    expect(cause.message).toMatch(/monitorWindow: 1s is shorter than the environment's 3s/);
    const result = cause.details![0] as RunbookResult;
    expect(result.steps.filter((s) => s.status === 'succeeded').map((s) => s.name)).toEqual([
      'lock target',
      'load environment',
    ]);
    expect((await t.stats()).pid).toBe(pid);
  });
});

describe('sqlite recovery: WAL (§4.2)', () => {
  it('a WAL cut mid-frame after a crash: set aside (kept in the forensic copy), the main file verified', async () => {
    const t = await sqliteTarget(h, { seedBytes: 20_000_000 });
    await until('WAL frames', async () => (await t.stats()).writes > 20);
    const wal = `${t.db}-wal`;
    // the service dies: its WAL stays; then the WAL loses the end of its last frames
    process.kill(Number(readFileSync(t.pidFile, 'utf8')), 'SIGKILL');
    await until('the service gone', async () => (await t.health()).status === 0);
    const frame = 24 + 4096;
    const frames = Math.floor((statSync(wal).size - 32) / frame);
    expect(frames).toBeGreaterThan(2);
    const cut = 32 + (frames - 1) * frame + 1000;
    truncateSync(wal, cut);

    const result = await runRecovery(t, 'wal');
    expect(result.outcome, result.error).toBe('succeeded');
    const extra = result.extra as Record<string, any>;
    expect(extra.dropped).toMatchObject({ walBytes: cut, frames: frames - 1, partialBytes: 1000 });
    expect(extra.dropped.transactions).toBeGreaterThan(0);
    expect(step(result, 'move wal aside').result).toMatch(/^abathur\.db-wal, abathur\.db-shm removed/);
    expect(step(result, 'validate')).toMatchObject({ status: 'succeeded' });
    expect(statSync(join(extra.forensicCopy, 'abathur.db-wal')).size).toBe(cut);
    await healthy(t);
    expect(liveIntegrity(t)).toBe('ok');
    const s1 = await t.stats();
    await until('writes', async () => (await t.stats()).writes > s1.writes + 2);
    expect((await t.stats()).writeErrors).toBe(0);
  });
});

describe('sqlite recovery: disk space (§4.3)', () => {
  it('below the threshold: checkpoint, old backups pruned, VACUUM; free space after > before', async () => {
    // a threshold above any free space: the scenario starts whatever the disk holds
    // (what it frees is large beside what other processes may write to the same filesystem meanwhile)
    const t = await sqliteTarget(h, { seedBytes: 40_000_000, sqlite: { space: { minFree: 2 ** 52 } } });
    const fresh = await backup(t);
    const m = JSON.parse(readFileSync(manifestPath(t.backupsDir, fresh), 'utf8')) as BackupManifest;
    const old = [60, 45, 40, 35].map((days) => {
      const at = new Date(Date.now() - days * 86_400_000);
      const name = `abathur_${at.toISOString().slice(0, 19).replace('T', '_').replaceAll(':', '-')}-old${days}`;
      return { name, file: `${name}.db.gz`, at };
    });
    for (const o of old) {
      writeFileSync(join(t.backupsDir, o.file), readFileSync(join(t.backupsDir, fresh)));
      await writeManifest(
        t.backupsDir,
        { ...m, name: o.name, file: o.file, createdAt: o.at.toISOString() },
        h.workerKey,
      );
    }
    // many free pages: most memory entries and audit rows deleted
    await t.stopService();
    const db = new Database(t.db);
    db.exec(
      'DELETE FROM memory_entries WHERE id % 10 != 0; DELETE FROM audit WHERE id % 10 != 0; DELETE FROM metrics WHERE id % 10 != 0;',
    );
    db.close();
    await t.startService();
    const sizeBefore = statSync(t.db).size;

    const result = await runRecovery(t, 'disk-full');
    expect(result.outcome, result.error).toBe('succeeded');
    const extra = result.extra as Record<string, any>;
    expect(extra.pruned.sort()).toEqual(old.map((o) => o.file).sort());
    expect(existsSync(join(t.backupsDir, fresh))).toBe(true);
    for (const o of old) expect(existsSync(join(t.backupsDir, o.file))).toBe(false);
    expect(extra.vacuum.vacuumed).toBe(true);
    expect(extra.vacuum.bytesAfter).toBeLessThan(sizeBefore * 0.8);
    expect(extra.prunedBytes).toBeGreaterThan(0);
    expect(extra.freeAfter).toBeGreaterThan(extra.freeBefore);
    for (const s of ['checkpoint', 'prune backups', 'stop services', 'vacuum', 'start services', 'health check'])
      expect(step(result, s).status, s).toBe('succeeded');
    expect(step(result, 'forensic copy')).toMatchObject({ status: 'skipped' });
    await healthy(t);
  });

  it('above the threshold: reported, nothing changed', async () => {
    const t = await sqliteTarget(h, { seedBytes: 2_000_000, sqlite: { space: { minFree: 1 } } });
    const pid = (await t.stats()).pid;
    const result = (await (
      await startRunbook(h, 'sqlite-recovery', { environment: t.envName, scenario: 'disk-full' })
    ).result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect(String((result.extra as Record<string, unknown>).outcome)).toMatch(/above the threshold 1: nothing changed/);
    expect(step(result, 'vacuum').status).toBe('skipped');
    expect((await t.stats()).pid).toBe(pid);
  });
});
