import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunbookResult } from '../src/shared/types.js';
import { sigkill, startChildWorker } from './support/child-worker.js';
import { Harness } from './support/harness.js';
import { saveHistory } from './support/histories.js';
import { addTeams, pgBackup, pgQuery, pgTarget, startPgRunbook } from './support/postgres.js';
import { approve } from './support/sqlite-recovery.js';

/** A worker (child process) SIGKILLed while pg_restore fills the new database; another worker resumes the run. */
const h = new Harness();
const children: ChildProcess[] = [];
beforeAll(() => h.start({ worker: false }));
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await h.close();
});

describe('postgres-restore survives a worker SIGKILL', () => {
  it('killed during pg_restore: the retry drops and recreates the new database and restores it cleanly', async () => {
    const t = await pgTarget(h, { rows: 400_000, compare: { within: 1000 } });
    const first = await startChildWorker(h, children);
    const backup = await pgBackup(h, t);
    await addTeams(t, 1_000_000, 10);
    const id = `postgres-restore-killed-${h.taskQueue}`;
    const handle = await startPgRunbook(h, 'postgres-restore', t, { backup }, id);
    await approve(h, handle);
    // pg_restore is connected to the new database: kill the worker that runs it
    for (let i = 0; ; i++) {
      const busy = await pgQuery<{ n: string }>(
        h.databaseUrl,
        `SELECT count(*) AS n FROM pg_stat_activity WHERE datname LIKE '${t.database}_rs_%' AND application_name = 'pg_restore'`,
      );
      if (Number(busy[0]!.n) > 0) break;
      if (i > 1200) throw new Error('pg_restore never started');
      await new Promise((r) => setTimeout(r, 25));
    }
    await sigkill(first.child);
    await startChildWorker(h, children);
    const result = (await handle.result()) as RunbookResult;
    await saveHistory(h.client, id, 'worker-killed-during-restore', 'postgres-restore');

    expect(result.outcome).toBe('succeeded');
    expect(result.steps.find((s) => s.name === 'restore into new database')!.attempts).toBe(2);
    expect(result.steps.find((s) => s.name === 'validate restore')!.status).toBe('succeeded');
    expect(await t.count('organizations_team')).toBe(400_000);
    expect(await t.count('organizations_teammigrationmap')).toBe(400_000);
    const previous = (result.extra as { previousDatabase: string }).previousDatabase;
    expect(await t.count('organizations_team', previous)).toBe(400_010);
    expect(await t.databases()).toEqual([t.database, previous]);
  });
});
