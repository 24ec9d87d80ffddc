import type { ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBackups, verifyBackupDigest } from '../src/activities/sqlite/backup-files.js';
import type { RunbookResult } from '../src/shared/types.js';
import { sigkill, startChildWorker } from './support/child-worker.js';
import { Harness } from './support/harness.js';
import { saveHistory } from './support/histories.js';
import { runbook } from './support/cli.js';
import { sqliteTarget, startRunbook } from './support/sqlite.js';

/** A worker (child process) SIGKILLed in the middle of a backup; the CLI's view of the backups. */
const h = new Harness();
const children: ChildProcess[] = [];
beforeAll(() => h.start({ worker: false }));
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await h.close();
});

describe('sqlite backup survives a worker SIGKILL', () => {
  it('killed while compressing: a new worker resumes from the finished copy and publishes one verified backup', async () => {
    const t = await sqliteTarget(h, { seedBytes: 150_000_000 });
    const first = await startChildWorker(h, children);
    const id = `sqlite-backup-killed-${h.taskQueue}`;
    const handle = await startRunbook(h, 'sqlite-backup', { environment: t.envName }, id);
    await h.waitFor(handle, (s) => s.currentStep === 'compress', 120_000);
    await sigkill(first.child);
    await startChildWorker(h, children);
    const result = (await handle.result()) as RunbookResult;
    await saveHistory(h.client, id, 'worker-killed-while-compressing', 'sqlite-backup');

    expect(result.outcome).toBe('succeeded');
    // the copy was not taken again: its marker carried the finished step over the crash
    expect(result.steps.find((s) => s.name === 'copy')!.attempts).toBe(1);
    expect(result.steps.find((s) => s.name === 'compress')!.attempts).toBe(2);
    const backups = await listBackups(t.backupsDir, 'abathur', [h.workerKey.publicKey]);
    expect(backups).toHaveLength(1);
    expect(backups[0]!.problem).toBeUndefined();
    await verifyBackupDigest(backups[0]!);
    expect(readdirSync(join(t.backupsDir, '.work'))).toEqual([]);
    expect((await t.stats()).writeErrors).toBe(0);

    // the operator's view: runbook sqlite backups
    const listed = await runbook(['sqlite', 'backups', '--env', t.envName, '--target', 'app', '--json'], h.env());
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([
      expect.objectContaining({
        file: backups[0]!.file,
        verified: true,
        sha256: backups[0]!.manifest!.compressed.sha256,
      }),
    ]);
  });
});
