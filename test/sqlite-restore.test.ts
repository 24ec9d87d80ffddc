import { execFileSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderPostmortem } from '../src/activities/evidence/postmortem.js';
import { renderReport } from '../src/activities/evidence/report.js';
import { manifestPath, writeManifest, type BackupManifest } from '../src/activities/sqlite/backup-files.js';
import { sha256 } from '../src/activities/digest.js';
import { ErrorType } from '../src/shared/constants.js';
import { abortSignal, statusQuery } from '../src/shared/messages.js';
import type { RunbookResult } from '../src/shared/types.js';
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { RtoReport } from '../src/workflows/sqlite/rto.js';
import { sigkill, startChildWorker } from './support/child-worker.js';
import { runbook } from './support/cli.js';
import { Harness } from './support/harness.js';
import { saveHistory } from './support/histories.js';
import { sqliteTarget, startRunbook, type SqliteTestTarget } from './support/sqlite.js';
import {
  approve,
  backupsOf,
  evidenceOf,
  failureOf,
  forensicCopyOf,
  gunzipBackup,
  healthy,
  manifestOf,
  moreWrites,
  queryDb,
  scratchCopy,
  tableDigests,
  takeBackup,
} from './support/sqlite-recovery.js';

const h = new Harness();
beforeAll(() => h.start());
afterAll(() => h.close());

const STEPS = [
  'lock target',
  'load environment',
  'inspect',
  'choose backup',
  'check space',
  'seal plan',
  'approval',
  'stage restore',
  'stop services',
  'forensic copy',
  'assess',
  'install',
  'validate',
  'start services',
  'health and smoke',
  'monitor',
  'report RTO',
];

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;

/** The activity types the run scheduled, in order. */
const scheduled = (history: History) =>
  history
    .events!.filter((e) => e.activityTaskScheduledEventAttributes)
    .map((e) => e.activityTaskScheduledEventAttributes!.activityType!.name!);

/** The failure types of the run's failed activities (ActivityTaskFailed events). */
const activityFailureTypes = async (handle: WorkflowHandle) =>
  (await handle.fetchHistory())
    .events!.filter((e) => e.activityTaskFailedEventAttributes)
    .map((e) => e.activityTaskFailedEventAttributes!.failure!.applicationFailureInfo?.type);

const rtoOf = (r: { results?: Record<string, unknown> }) => r.results!.rto as RtoReport;

/** A backup named for `at` (a copy of `file`'s bytes, possibly changed), with a manifest written by `manifest`. */
function fakeBackup(
  t: SqliteTestTarget,
  file: string,
  at: Date,
  tag: string,
  o: { bytes?: (b: Buffer) => Buffer; manifest?: 'signed' | 'unsigned' | 'tampered' } = {},
): Promise<string> {
  const name = `abathur_${at.toISOString().slice(0, 19).replace('T', '_').replaceAll(':', '-')}-${tag}`;
  const newFile = `${name}.db.gz`;
  const bytes = readFileSync(join(t.backupsDir, file));
  writeFileSync(join(t.backupsDir, newFile), o.bytes ? o.bytes(Buffer.from(bytes)) : bytes);
  const m: BackupManifest = { ...manifestOf(t, file), name, file: newFile, createdAt: at.toISOString() };
  return (async () => {
    const signed = await writeManifest(t.backupsDir, m, h.workerKey);
    if (o.manifest === 'unsigned') {
      const { signature: _, ...unsigned } = signed;
      writeFileSync(manifestPath(t.backupsDir, newFile), JSON.stringify(unsigned));
    } else if (o.manifest === 'tampered') {
      const tampered = { ...signed, rows: { ...signed.rows, tasks: (signed.rows.tasks ?? 0) + 1 } };
      writeFileSync(manifestPath(t.backupsDir, newFile), JSON.stringify(tampered));
    }
    return newFile;
  })();
}

const flipBytes = (b: Buffer) => {
  for (let i = 0; i < 64; i++) b[Math.floor(b.length / 2) + i]! ^= 0xff;
  return b;
};

/** The digests of the database's files as they are now ('' when absent). */
const filesOf = (t: SqliteTestTarget) => ({
  db: t.fileDigest(t.db),
  wal: t.fileDigest(`${t.db}-wal`),
  shm: t.fileDigest(`${t.db}-shm`),
});

/** Nothing of a restore is left beside the database: no staged file, no forensic copy. */
function nothingWritten(t: SqliteTestTarget): void {
  expect(readdirSync(t.dataDir).filter((f) => f.includes('.restore-') || f.endsWith('.partial'))).toEqual([]);
  expect(existsSync(join(t.backupsDir, 'forensics'))).toBe(false);
}

describe('sqlite restore (seed §2.4, §3.3) on the demo application', () => {
  it('approve path while it writes: the backup in place, the later rows gone, forensic copy kept, healthy, RTO per phase', async () => {
    // a write every 400 ms: the restarted service's writes stay in its WAL (no checkpoint before the checks)
    const t = await sqliteTarget(h, { seedBytes: 3_000_000, writeIntervalMs: 400 });
    const file = await takeBackup(h, t);
    const manifest = manifestOf(t, file);
    await moreWrites(t, 4);
    const detectedAt = new Date(Date.now() - 30_000).toISOString();
    // started as the README says, through the CLI (the default workflow id: <runbook>--<env>--<target>)
    const id = `sqlite-restore--${t.envName}--app`;
    const input = JSON.stringify({ detectedAt, integrityCheck: true, incidentTicket: 'INC-42' });
    const started = await runbook(
      [
        'start',
        'sqlite-restore',
        '--env',
        t.envName,
        '--target',
        'app',
        '--input',
        input,
        '--requester',
        'rita',
        '--reason',
        'corrupted after a bad deploy',
      ],
      h.env(),
    );
    expect(started.stderr).toBe('');
    expect(started.stdout).toContain(`workflow id: ${id}`);
    const handle = h.client.workflow.getHandle(id);
    const waiting = await h.waitForApproval(handle);
    expect(waiting.plan!.summary).toContain(`from ${file} taken ${manifest.createdAt}: every write after that time`);
    expect(waiting.plan!.details).toMatchObject({ skipped: [], dataLossSince: manifest.createdAt, services: ['api'] });
    expect(waiting.steps.find((s) => s.name === 'stop services')!.status).toBe('pending');
    // `runbook status` shows the RTO so far while the run waits
    const running = await runbook(['status', id], h.env());
    expect(running.stdout).toMatch(/rto: RTO not reached \(target 1h\): detect \d+s · decide — · restore —/);
    const before = await t.stats();
    await approve(h, handle);
    const result = (await handle.result()) as RunbookResult;
    // right away, before the restarted service's WAL is checkpointed: the database file is the backup, byte for byte
    const mainFile = scratchCopy(h, [t.db]);
    await saveHistory(h.client, id, 'approve-path', 'sqlite-restore');

    expect(result.outcome).toBe('succeeded');
    expect(result.steps.map((s) => [s.name, s.status])).toEqual(STEPS.map((s) => [s, 'succeeded']));
    expect(sha256(readFileSync(join(mainFile, 'abathur.db')))).toBe(manifest.raw.sha256);
    expect(await tableDigests(join(mainFile, 'abathur.db'))).toEqual(await tableDigests(gunzipBackup(h, t, file)));

    // the rows written after the backup are not in the live database; the forensic copy keeps them
    const copy = forensicCopyOf(result);
    expect(copy.files.map((f) => f.role)).toContain('db');
    const forensic = scratchCopy(
      h,
      copy.files.map((f) => join(copy.dir, f.name)),
    );
    for (const f of copy.files) expect(sha256(readFileSync(join(forensic, f.name)))).toBe(f.sha256);
    const { last } = queryDb<{ last: number }>(gunzipBackup(h, t, file), 'SELECT max(id) AS last FROM tasks')[0]!;
    const lost = queryDb<{ prompt: string }>(
      join(forensic, 'abathur.db'),
      'SELECT prompt FROM tasks WHERE id > ?',
      last,
    );
    expect(lost.length).toBeGreaterThanOrEqual(4);
    const live = new Set(queryDb<{ prompt: string }>(t.db, 'SELECT prompt FROM tasks').map((r) => r.prompt));
    expect(lost.filter((r) => live.has(r.prompt))).toEqual([]);

    // healthy and writing again, without an error
    const after = await t.stats();
    expect((await t.health()).status).toBe(200);
    expect(after.pid).not.toBe(before.pid);
    await moreWrites(t, 2);
    expect((await t.stats()).writeErrors).toBe(0);

    // RTO per phase from the history, within the environment's 1h
    const rto = rtoOf(result);
    expect(rto.phases.map((p) => p.phase)).toEqual(['detect', 'decide', 'restore', 'verify', 'healthy']);
    for (const p of rto.phases) expect(p.ms, p.phase).toBeGreaterThanOrEqual(0);
    expect(rto.phases[0]!.ms).toBeGreaterThanOrEqual(29_000);
    expect(rto.detectedAt).toBe(detectedAt);
    expect(rto).toMatchObject({ target: '1h', withinTarget: true });
    expect(rto.totalMs).toBe(rto.phases.reduce((n, p) => n + p.ms!, 0));
    expect(result.results!.severity).toBe('HIGH');

    // evidence: the same RTO, the backup, the data loss, shown in report.md
    const doc = evidenceOf(result);
    const extra = doc.extra as Record<string, any>;
    expect(extra.rto).toEqual(rto);
    expect(extra).toMatchObject({ severity: 'HIGH', servicesAffected: ['api'], backup: { file }, skipped: [] });
    expect(extra.dataLoss).toMatch(new RegExp(`^every write after ${manifest.createdAt}`));
    expect(renderReport(doc)).toMatch(/## Results\n\n- RTO \d+s of 1h \(within target\): detect \d+s · decide/);

    // status after the run, the report and the post-mortem from the CLI
    const status = await runbook(['status', id], h.env());
    expect(status.stdout).toMatch(/rto: RTO \d+s of 1h \(within target\)/);
    const report = await runbook(['report', id], h.env());
    expect(report.code).toBe(0);
    expect(report.stdout).toBe(renderReport(doc));
    const pm = await runbook(['report', id, '--postmortem'], h.env());
    expect(pm.code).toBe(0);
    expect(pm.stdout).toBe(renderPostmortem(doc));
    expect(pm.stdout).toContain(`# Incident Post-Mortem: ${detectedAt.slice(0, 10)}`);
    expect(pm.stdout).toContain(`- Incident start time: ${detectedAt} (detected; the run started ${result.startedAt})`);
    expect(pm.stdout).toMatch(/- Duration: \d+s\n- Severity: HIGH\n/);
    expect(pm.stdout).toContain('- Services affected: api\n- Users impacted: _(to be filled in)_');
    expect(pm.stdout).toContain(`- Data loss: every write after ${manifest.createdAt}`);
    expect(pm.stdout).toContain(`- Backup used: ${file} (taken ${manifest.createdAt})`);
    expect(pm.stdout).toContain('- Approvals: alice (unsigned)');
    expect(pm.stdout).toContain('- Undone: nothing');
    expect(pm.stdout).toMatch(/- RTO \d+s of 1h \(within target\): detect/);
    expect(pm.stdout).toContain(
      `] incident detected\n- [${result.startedAt}] sqlite-restore started by rita: corrupted after a bad deploy`,
    );
    expect(pm.stdout).toMatch(/\] approve by alice \[unsigned\]\n/);
    expect(pm.stdout).toMatch(/\] step "install" succeeded: installed: /);
    expect(pm.stdout).toMatch(/\] run ended: SUCCEEDED\n\n## Resolution/);
    for (const section of [
      'Summary',
      'Impact',
      'Root Cause',
      'Timeline',
      'Resolution',
      'Lessons Learned',
      'Action Items',
    ])
      expect(pm.stdout).toContain(`\n## ${section}\n`);
  });

  it('chooses the newest verified backup: newer ones with flipped bytes, an unsigned or a tampered manifest are skipped, with reasons', async () => {
    const t = await sqliteTarget(h, { seedBytes: 1_000_000, start: false });
    const good = await takeBackup(h, t);
    const at = (min: number) => new Date(Date.parse(manifestOf(t, good).createdAt) + min * 60_000);
    const corrupt = await fakeBackup(t, good, at(30), 'flipped', { bytes: flipBytes });
    const unsigned = await fakeBackup(t, good, at(20), 'unsigned', { manifest: 'unsigned' });
    const tampered = await fakeBackup(t, good, at(10), 'tampered', { manifest: 'tampered' });
    expect(backupsOf(t)).toEqual([good, tampered, unsigned, corrupt]);
    const result = (await (
      await startRunbook(h, 'sqlite-restore', { environment: t.envName, dryRun: true })
    ).result()) as RunbookResult;
    expect(result.outcome).toBe('dry_run');
    expect(result.plan!.summary).toContain(`from ${good} taken`);
    expect(result.plan!.details!.skipped).toEqual([
      { file: corrupt, reason: expect.stringMatching(/^sha256 [0-9a-f]{16}… does not match its manifest/) },
      { file: unsigned, reason: 'manifest is not signed' },
      { file: tampered, reason: 'manifest signature does not verify' },
    ]);
    expect(result.steps.find((s) => s.name === 'choose backup')!.result).toContain(
      `skipped 3 newer: ${corrupt}: sha256`,
    );
  });

  describe('bad input and faults stop the run before anything changes', () => {
    let t: SqliteTestTarget;
    let good: string;
    beforeAll(async () => {
      t = await sqliteTarget(h, { seedBytes: 1_000_000, start: false });
      good = await takeBackup(h, t);
    });

    async function refused(input: Record<string, unknown>, type: string, approveIt = false) {
      const files = filesOf(t);
      const handle = await startRunbook(h, 'sqlite-restore', { environment: t.envName, ...input });
      if (approveIt) await approve(h, handle);
      const failure = await failureOf(handle);
      expect(failure.type).toBe(type);
      expect(filesOf(t)).toEqual(files);
      expect((await t.service.status()).running, 'the service was not started').toBe(false);
      nothingWritten(t);
      return { ...failure, activityFailures: await activityFailureTypes(handle) };
    }

    it('a named backup with a path is InvalidInput naming the field', async () => {
      const { result, message } = await refused({ backup: '../x.db.gz' }, ErrorType.InvalidInput);
      expect(message).toMatch(/^invalid input: backup: must be a backup file name of the target .*no path/);
      expect(result).toBeUndefined();
    });

    it('a detectedAt in the future or more than 7 days ago, or a monitorWindow shorter than the environment is InvalidInput', async () => {
      await refused({ detectedAt: new Date(Date.now() + 3_600_000).toISOString() }, ErrorType.InvalidInput);
      await refused({ detectedAt: new Date(Date.now() - 8 * 86_400_000).toISOString() }, ErrorType.InvalidInput);
      const { result } = await refused({ monitorWindow: '1s' }, ErrorType.InvalidInput);
      expect(result!.error).toContain('monitorWindow: 1s is shorter than the environment');
    });

    it('a named backup whose bytes do not match its manifest is BackupInvalid', async () => {
      const at = new Date(Date.parse(manifestOf(t, good).createdAt) - 3_600_000);
      const flipped = await fakeBackup(t, good, at, 'namedflip', { bytes: flipBytes });
      const { result, activityFailures } = await refused({ backup: flipped }, ErrorType.RunbookFailed);
      expect(activityFailures).toEqual([ErrorType.BackupInvalid]);
      expect(result!.error).toMatch(/does not match its manifest/);
      expect(result!.steps.find((s) => s.name === 'approval')!.status).toBe('skipped');
    });

    it('a backup that fails its own integrity check (its manifest signed and matching) is BackupInvalid, before the services stop', async () => {
      // a database with a damaged b-tree page, gzipped, with a manifest signed by this worker that matches it
      const raw = readFileSync(gunzipBackup(h, t, good));
      const pageSize = raw.readUInt16BE(16);
      const page = Math.floor(raw.length / pageSize / 2);
      raw.fill(0xa5, page * pageSize + 8, page * pageSize + pageSize - 8);
      const gz = gzipSync(raw);
      const m = manifestOf(t, good);
      const at = new Date(Date.parse(m.createdAt) - 7_200_000);
      const name = `abathur_${at.toISOString().slice(0, 19).replace('T', '_').replaceAll(':', '-')}-damaged`;
      writeFileSync(join(t.backupsDir, `${name}.db.gz`), gz);
      await writeManifest(
        t.backupsDir,
        {
          ...m,
          name,
          file: `${name}.db.gz`,
          createdAt: at.toISOString(),
          raw: { bytes: raw.length, sha256: sha256(raw) },
          compressed: { bytes: gz.length, sha256: sha256(gz) },
        },
        h.workerKey,
      );
      const { result, activityFailures } = await refused({ backup: `${name}.db.gz` }, ErrorType.RunbookFailed, true);
      expect(activityFailures).toEqual([ErrorType.BackupInvalid]);
      expect(result!.outcome).toBe('failed');
      // its undo (discard the staged file, registered before it acted) ran
      expect(result!.steps.find((s) => s.name === 'stage restore')).toMatchObject({
        status: 'compensated',
        error: expect.stringMatching(new RegExp(`^${name}\\.db\\.gz fails validation: .*(malformed|corrupt)`, 'i')),
      });
      expect(result!.steps.find((s) => s.name === 'stop services')!.status).toBe('skipped');
      expect(result!.compensations.map((c) => [c.step, c.status])).toEqual([['stage restore', 'succeeded']]);
    });
  });

  it('not enough space beside the database for the staged file is InsufficientSpace, before anything changes', async () => {
    const t = await sqliteTarget(h, { seedBytes: 2_000_000, start: false, writeIntervalMs: 1000 });
    await takeBackup(h, t);
    // the database's directory on a filesystem with about 1 MB free: room to run, not for a 2 MB staged copy
    const saved = `${t.dataDir}.saved`;
    cpSync(t.dataDir, saved, { recursive: true });
    const size = statSync(t.db).size + 1_000_000;
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', t.dataDir]);
    h.onClose(async () => {
      await t.stopService();
      execFileSync('umount', [t.dataDir]);
    });
    cpSync(saved, t.dataDir, { recursive: true });
    rmSync(saved, { recursive: true });
    await t.startService();
    const { pid } = await t.stats();
    const handle = await startRunbook(h, 'sqlite-restore', { environment: t.envName });
    const failure = await failureOf(handle);
    expect(failure.type).toBe(ErrorType.RunbookFailed);
    expect(await activityFailureTypes(handle)).toEqual([ErrorType.InsufficientSpace]);
    expect(failure.result!.steps.find((s) => s.name === 'check space')).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/the staged file needs .* on the filesystem of .*, .* free/),
    });
    expect(failure.result!.compensations).toEqual([]);
    // the service was not touched: same process, still writing
    expect((await t.stats()).pid).toBe(pid);
    await moreWrites(t, 1);
    nothingWritten(t);
  });

  it('abort during the monitoring window, after a crash left db + wal + shm: the original files back, byte-identical, services running again', async () => {
    const t = await sqliteTarget(h, { seedBytes: 2_000_000, writeIntervalMs: 200 });
    const file = await takeBackup(h, t);
    const manifest = manifestOf(t, file);
    await moreWrites(t, 5);
    // the failure: the application dies, its WAL and shm stay behind
    const crashed = await t.stats();
    process.kill(crashed.pid, 'SIGKILL');
    while ((await t.service.status()).running) await new Promise((r) => setTimeout(r, 20));
    const before = filesOf(t);
    expect(before.wal, 'the crash left a WAL').not.toBe('');
    expect(before.shm).not.toBe('');

    const id = `sqlite-restore-abort-${h.taskQueue}`;
    const handle = await startRunbook(h, 'sqlite-restore', { environment: t.envName, monitorWindow: '2m' }, id);
    await approve(h, handle);
    await h.waitFor(handle, (s) => s.currentStep === 'monitor');
    // the restore is in place and served; the old WAL was not applied to it
    expect(t.fileDigest(t.db)).toBe(manifest.raw.sha256);
    expect((await t.health()).status).toBe(200);
    await handle.signal(abortSignal, { by: 'carol', reason: 'restored the wrong backup' });
    const result = (await handle.result()) as RunbookResult;
    const mainFile = t.fileDigest(t.db);
    await saveHistory(h.client, id, 'abort-during-monitoring', 'sqlite-restore');

    expect(result.outcome).toBe('aborted');
    expect(result.compensations.map((c) => [c.step, c.status])).toEqual([
      ['start services', 'succeeded'],
      ['install', 'succeeded'],
      ['stop services', 'succeeded'],
      ['stage restore', 'succeeded'],
    ]);
    // the forensic copy holds exactly what the crash left, and that is what was put back
    const copy = forensicCopyOf(result);
    expect(Object.fromEntries(copy.files.map((f) => [f.role, f.sha256]))).toEqual(before);
    expect(copy.absent).toEqual([]);
    // put back byte for byte: the undo compared each file with the forensic copy's digest before it returned (a
    // restarted service may checkpoint its WAL into the file a moment later, so that check is the undo's own)
    const history = await handle.fetchHistory();
    const putBack = history.events!.find(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'putBackSqliteForensicCopy',
    );
    const done = history.events!.find(
      (e) => e.activityTaskCompletedEventAttributes?.scheduledEventId?.toString() === putBack!.eventId!.toString(),
    );
    expect(
      defaultPayloadConverter.fromPayload(done!.activityTaskCompletedEventAttributes!.result!.payloads![0]!),
    ).toMatchObject({ value: { restored: ['abathur.db', 'abathur.db-wal', 'abathur.db-shm'], removed: [] } });
    expect([before.db, t.fileDigest(t.db)]).toContain(mainFile);
    await healthy(t);
    await moreWrites(t, 2);
    // the rows of the original WAL (written after the backup) are there again
    const tasks = queryDb<{ n: number }>(t.db, 'SELECT count(*) AS n FROM tasks')[0]!.n;
    expect(tasks).toBeGreaterThanOrEqual(crashed.tasks);
    const extra = evidenceOf(result).extra as Record<string, unknown>;
    expect(extra.dataLoss).toBe('none: the original database was put back');
    expect(readdirSync(t.dataDir).filter((f) => f.includes('.restore-'))).toEqual([]);
    const pm = renderPostmortem(evidenceOf(result));
    expect(pm).toContain('- Undone: start services (succeeded), install (succeeded), stop services (succeeded)');
    expect(pm).toContain('- Aborted by carol at');
    // undone: the recovery did not get there
    expect([rtoOf(result).totalMs, rtoOf(result).withinTarget]).toEqual([undefined, undefined]);
    expect(pm).toMatch(/- RTO not reached \(target 1h\): detect/);
    expect(pm).toMatch(/- Incident end time: \S+ \(run ended\)/);
  });
});

describe('sqlite restore survives its worker being SIGKILLed', () => {
  const hk = new Harness();
  const children: ChildProcess[] = [];
  beforeAll(() => hk.start({ worker: false }));
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await hk.close();
  });

  it('killed while staging and again in the monitoring window: new workers resume, the database is never half-written', async () => {
    let worker = await startChildWorker(hk, children);
    const t = await sqliteTarget(hk, { seedBytes: 12_000_000, writeIntervalMs: 500 });
    const file = await takeBackup(hk, t);
    const manifest = manifestOf(t, file);
    await moreWrites(t, 2);
    const id = `sqlite-restore-killed-${hk.taskQueue}`;
    const handle = await startRunbook(hk, 'sqlite-restore', { environment: t.envName, monitorWindow: '8s' }, id);
    await approve(hk, handle);

    /** the database in place is whole: the old one or the restored file (read live while its service runs) */
    const whole = async (where: string) => {
      const running = (await t.service.status()).running;
      const path = running ? t.db : join(scratchCopy(hk, [t.db, `${t.db}-wal`]), 'abathur.db');
      expect(queryDb(path, 'PRAGMA quick_check'), where).toEqual([{ quick_check: 'ok' }]);
      return t.fileDigest(t.db);
    };

    const killedIn: string[] = [];
    // as soon as the run is past the gate (polled faster than waitFor: staging takes about a second)
    let current: string | undefined;
    while (current === undefined || current === 'approval') {
      current = await handle.query(statusQuery).then(
        (s) => s.currentStep,
        () => undefined,
      );
      await new Promise((r) => setTimeout(r, 10));
    }
    killedIn.push(current);
    await sigkill(worker.child);
    await whole(`killed in ${current}`);
    worker = await startChildWorker(hk, children);

    await hk.waitFor(handle, (s) => s.currentStep === 'monitor', 90_000);
    killedIn.push('monitor');
    await sigkill(worker.child);
    expect(await whole('killed in the monitoring window')).toBe(manifest.raw.sha256);
    worker = await startChildWorker(hk, children);

    const result = (await handle.result()) as RunbookResult;
    await saveHistory(hk.client, id, 'worker-killed', 'sqlite-restore');
    expect(killedIn[0]).toMatch(/^(stage restore|stop services|forensic copy|assess|install)$/);
    expect(result.outcome).toBe('succeeded');
    expect(result.steps.every((s) => s.status === 'succeeded')).toBe(true);
    expect(result.compensations).toEqual([]);
    await whole('after the run');
    expect((await t.health()).status).toBe(200);
    expect(rtoOf(result).withinTarget).toBe(true);
    // the one rename was asked once
    expect(scheduled(await handle.fetchHistory()).filter((n) => n === 'installRestore')).toHaveLength(1);
    await sigkill(worker.child);
  }, 240_000);
});
