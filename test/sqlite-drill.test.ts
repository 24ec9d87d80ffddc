import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { manifestPath, writeManifest, type BackupManifest } from '../src/activities/sqlite/backup-files.js';
import type { ChosenBackup, SkippedBackup } from '../src/activities/sqlite/choose.js';
import { ErrorType } from '../src/shared/constants.js';
import type { RunbookResult } from '../src/shared/types.js';
import type { DrillReport } from '../src/workflows/sqlite-drill.js';
import { Harness } from './support/harness.js';
import { saveHistory } from './support/histories.js';
import { sqliteTarget, startRunbook, type SqliteTestTarget } from './support/sqlite.js';

const h = new Harness();
beforeAll(() => h.start());
afterAll(() => h.close());

type DrillResult = RunbookResult & { extra: DrillReport & { backup: ChosenBackup; skipped: SkippedBackup[] } };

const backupFiles = (t: SqliteTestTarget) =>
  readdirSync(t.backupsDir)
    .filter((f) => f.endsWith('.db.gz'))
    .sort()
    .reverse();
const manifestOf = (t: SqliteTestTarget, file: string): BackupManifest =>
  JSON.parse(readFileSync(manifestPath(t.backupsDir, file), 'utf8'));

async function backup(t: SqliteTestTarget): Promise<string> {
  const result = (await (await startRunbook(h, 'sqlite-backup', { environment: t.envName })).result()) as RunbookResult;
  expect(result.outcome).toBe('succeeded');
  return backupFiles(t)[0]!;
}

/** A drill's result, from its completion or from the details of its failure. */
async function drill(t: SqliteTestTarget, id?: string): Promise<DrillResult> {
  const handle = await startRunbook(h, 'sqlite-drill', { environment: t.envName }, id);
  try {
    return (await handle.result()) as DrillResult;
  } catch (err) {
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause.type).toBe(ErrorType.RunbookFailed);
    return cause.details![0] as DrillResult;
  }
}

const stepOf = (r: RunbookResult, name: string) => r.steps.find((s) => s.name === name)!;
/** what is left in the drills' sandbox directory */
const sandboxes = (t: SqliteTestTarget) =>
  existsSync(join(t.backupsDir, 'drills')) ? readdirSync(join(t.backupsDir, 'drills')) : [];

/** A backup file name `minutes` from now, in the target's naming (so it sorts as newer). */
function laterName(minutes: number, tag: string): { name: string; file: string; at: Date } {
  const at = new Date(Date.now() + minutes * 60_000);
  const name = `abathur_${at.toISOString().slice(0, 19).replace('T', '_').replaceAll(':', '-')}-${tag}`;
  return { name, file: `${name}.db.gz`, at };
}

describe('sqlite drill (seed §5): restore into a sandbox, validate, measure', () => {
  it('restores the newest verified backup into a sandbox, validates it and measures the rollback time while the service keeps writing', async () => {
    const t = await sqliteTarget(h, { seedBytes: 12_000_000 });
    const file = await backup(t);
    const manifest = manifestOf(t, file);
    const backupBytes = t.fileDigest(join(t.backupsDir, file));
    const before = await t.stats();
    const id = `sqlite-drill-${h.taskQueue}`;
    const result = await drill(t, id);
    await saveHistory(h.client, id, 'succeeded', 'sqlite-drill');
    const after = await t.stats();

    expect(result.outcome).toBe('succeeded');
    expect(result.steps.map((s) => [s.name, s.status])).toEqual([
      ['lock target', 'succeeded'],
      ['load environment', 'succeeded'],
      ['choose backup', 'succeeded'],
      ['seal plan', 'succeeded'],
      ['restore into sandbox', 'succeeded'],
      ['validate', 'succeeded'],
      ['measure', 'succeeded'],
      ['clean up', 'succeeded'],
    ]);
    const sandbox = join(t.backupsDir, 'drills', result.runId);
    expect(result.plan!.summary).toContain(`into ${sandbox}/, never the live ${t.db}`);
    expect(stepOf(result, 'restore into sandbox').result).toContain(`in ${sandbox}; sha256 as in the manifest`);

    const r = result.extra;
    expect(r.backup).toMatchObject({ file, sha256: manifest.compressed.sha256, rawBytes: manifest.raw.bytes });
    expect(r.skipped).toEqual([]);
    expect(r.rollbackTimeMs).toBeGreaterThan(0);
    expect(r.rollbackTimeMs).toBe(r.restoreMs + r.validateMs);
    expect(r).toMatchObject({ targetMs: 600_000, withinTarget: true, rtoMs: 3_600_000, withinRto: true });
    // choose + rollback + the demo's 3 s monitoring window
    expect(r.rtoEstimateMs).toBeGreaterThanOrEqual(r.rollbackTimeMs + 3000);
    expect(r.validation).toMatchObject({
      ok: true,
      integrity: 'ok',
      foreignKeyViolations: 0,
      coreTables: 6,
      smoke: { passed: 1, total: 1 },
      rows: manifest.rows,
    });
    expect(r.validation.indexes).toBeGreaterThanOrEqual(33);
    expect(r.validation.tables).toBeGreaterThanOrEqual(9);
    expect(stepOf(result, 'measure').result).toMatch(
      /^rollback time \S+ \(restore \S+ \+ validate \S+\) within the drill target 10m; RTO estimate \S+ \(choose \S+ \+ rollback \+ monitor window 3s\) within the RTO 1h$/,
    );
    expect(stepOf(result, 'clean up').result).toBe(`${sandbox} removed`);

    // nothing left behind, the backup as it was, and the application wrote throughout without an error
    expect(sandboxes(t)).toEqual([]);
    expect(t.fileDigest(join(t.backupsDir, file))).toBe(backupBytes);
    expect(after.writes).toBeGreaterThan(before.writes);
    expect(after.writeErrors).toBe(0);
    expect((await t.health()).status).toBe(200);
  });

  it('never touches the live database: db, wal and shm are byte-identical after a drill (service stopped)', async () => {
    const t = await sqliteTarget(h, { seedBytes: 4_000_000, writeIntervalMs: 5 });
    await backup(t);
    // the application killed mid-write: its WAL and shared memory stay beside the database, as after a crash
    await new Promise((r) => setTimeout(r, 500));
    process.kill(Number(readFileSync(t.pidFile, 'utf8')), 'SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    const live = () => ({
      files: readdirSync(t.dataDir).sort(),
      db: t.fileDigest(t.db),
      wal: t.fileDigest(`${t.db}-wal`),
      shm: t.fileDigest(`${t.db}-shm`),
    });
    const before = live();
    expect([before.db, before.wal, before.shm]).not.toContain('');
    const result = await drill(t);
    expect(result.outcome).toBe('succeeded');
    expect(live()).toEqual(before);
    expect(sandboxes(t)).toEqual([]);
  });

  it('skips a newer corrupt, unsigned or tampered backup, says why, and drills the older verified one', async () => {
    const t = await sqliteTarget(h, { seedBytes: 2_000_000, start: false });
    const good = await backup(t);
    const m = manifestOf(t, good);
    const bytes = readFileSync(join(t.backupsDir, good));
    // corrupt: a correctly signed manifest, but bytes flipped in the file after it was written
    const corrupt = laterName(60, 'corrupt');
    const flipped = Buffer.from(bytes);
    for (let i = 0; i < 8; i++) flipped[Math.floor(flipped.length / 2) + i]! ^= 0xff;
    writeFileSync(join(t.backupsDir, corrupt.file), flipped);
    await writeManifest(t.backupsDir, { ...m, name: corrupt.name, file: corrupt.file }, h.workerKey);
    // unsigned: the right bytes, a manifest nobody signed
    const unsigned = laterName(120, 'unsigned');
    writeFileSync(join(t.backupsDir, unsigned.file), bytes);
    const { signature: _, ...body } = { ...m, name: unsigned.name, file: unsigned.file };
    writeFileSync(manifestPath(t.backupsDir, unsigned.file), JSON.stringify(body));
    // tampered: signed, then its row counts edited
    const tampered = laterName(180, 'tampered');
    writeFileSync(join(t.backupsDir, tampered.file), bytes);
    const signed = await writeManifest(t.backupsDir, { ...m, name: tampered.name, file: tampered.file }, h.workerKey);
    const edited = { ...signed, rows: { ...signed.rows, tasks: (signed.rows.tasks ?? 0) + 1 } };
    writeFileSync(manifestPath(t.backupsDir, tampered.file), JSON.stringify(edited));

    const id = `sqlite-drill-skips-${h.taskQueue}`;
    const result = await drill(t, id);
    await saveHistory(h.client, id, 'skipped-invalid-backups', 'sqlite-drill');
    expect(result.outcome).toBe('succeeded');
    expect(result.extra.backup.file).toBe(good);
    expect(result.extra.skipped).toEqual([
      { file: tampered.file, reason: 'manifest signature does not verify' },
      { file: unsigned.file, reason: 'manifest is not signed' },
      { file: corrupt.file, reason: expect.stringMatching(/^sha256 [0-9a-f]{16}… does not match its manifest \(/) },
    ]);
    const chose = stepOf(result, 'choose backup').result!;
    expect(chose).toMatch(
      new RegExp(`^${good.replaceAll('.', '\\.')} \\(.*\\): sha256 matches its signed manifest; skipped `),
    );
    expect(chose).toContain(
      `skipped ${tampered.file}: manifest signature does not verify; ${unsigned.file}: manifest is not signed; ${corrupt.file}: sha256 `,
    );
    expect(result.plan!.details).toMatchObject({ skipped: result.extra.skipped });
    expect(result.extra.validation.ok).toBe(true);
    expect(sandboxes(t)).toEqual([]);
  });

  it('no verified backup at all: fails at once with BackupInvalid (not retried), nothing written', async () => {
    const t = await sqliteTarget(h, { seedBytes: 1_000_000, start: false });
    const id = `sqlite-drill-none-${h.taskQueue}`;
    const result = await drill(t, id);
    expect(result.outcome).toBe('failed');
    const choose = stepOf(result, 'choose backup');
    expect(choose).toMatchObject({ status: 'failed', attempts: 1 });
    expect(choose.error).toBe(`no verified backup of abathur in ${t.backupsDir}: no backup at all`);
    expect(result.steps.filter((s) => s.status === 'succeeded').map((s) => s.name)).toEqual([
      'lock target',
      'load environment',
    ]);
    expect(result.compensations).toEqual([]);
    // the activity's own failure: BackupInvalid, non-retryable
    const history = await h.client.workflow.getHandle(id).fetchHistory();
    const failures = history.events!.flatMap((e) =>
      e.activityTaskFailedEventAttributes ? [e.activityTaskFailedEventAttributes.failure!] : [],
    );
    expect(failures).toHaveLength(1);
    expect(failures[0]!.applicationFailureInfo).toMatchObject({ type: ErrorType.BackupInvalid, nonRetryable: true });
    expect(existsSync(t.backupsDir)).toBe(false);

    // only backups that do not verify: the same, each named with its reason
    await backup(t);
    const [only] = backupFiles(t);
    const m = manifestOf(t, only!);
    writeFileSync(manifestPath(t.backupsDir, only!), JSON.stringify({ ...m, signature: undefined }));
    const again = await drill(t);
    expect(again.outcome).toBe('failed');
    expect(stepOf(again, 'choose backup').error).toBe(
      `no verified backup of abathur in ${t.backupsDir}: none verified (${only}: manifest is not signed)`,
    );
    expect(sandboxes(t)).toEqual([]);
  });

  it('a restored copy that fails validation fails the drill, and the sandbox is removed (the undo of the restore)', async () => {
    const t = await sqliteTarget(h, {
      seedBytes: 2_000_000,
      start: false,
      sqlite: { smoke: { sql: [{ name: 'impossible', query: 'SELECT count(*) FROM tasks', expect: '< 0' }] } },
    });
    await backup(t);
    const id = `sqlite-drill-invalid-${h.taskQueue}`;
    const result = await drill(t, id);
    await saveHistory(h.client, id, 'validation-failed', 'sqlite-drill');
    expect(result.outcome).toBe('failed');
    const validate = stepOf(result, 'validate');
    expect(validate).toMatchObject({ status: 'failed', attempts: 1 });
    expect(validate.error).toMatch(
      /^the restored copy fails validation: smoke query impossible: got \d+, expected < 0$/,
    );
    expect(stepOf(result, 'restore into sandbox').status).toBe('compensated');
    expect(result.compensations).toMatchObject([{ step: 'restore into sandbox', status: 'succeeded' }]);
    expect(stepOf(result, 'measure').status).toBe('skipped');
    expect(sandboxes(t)).toEqual([]);
  });
});
