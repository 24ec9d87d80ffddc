import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createSqliteRecoveryActivities } from '../src/activities/sqlite/recovery.js';
import { inThread } from '../src/activities/sqlite/thread.js';
import { SCHEMA_SQL_PATH } from '../src/demo/sqlite-app/schema.js';
import { repoRoot } from '../src/dev/temporal-server.js';
import { abortSignal } from '../src/shared/messages.js';
import type { RunbookResult } from '../src/shared/types.js';
import type { RtoReport } from '../src/workflows/sqlite/rto.js';
import { Harness } from './support/harness.js';
import { saveHistory } from './support/histories.js';
import { sqliteTarget, startRunbook } from './support/sqlite.js';
import {
  approve,
  evidenceOf,
  failureOf,
  healthy,
  forensicCopyOf,
  moreWrites,
  queryDb,
  scratchCopy,
} from './support/sqlite-recovery.js';

const h = new Harness();
beforeAll(() => h.start());
afterAll(() => h.close());

/** The schema digest of a database made from schema.sql alone. */
async function schemaOnly(): Promise<string> {
  const dir = join(h.root, 'schema-only');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `fresh-${Date.now()}.db`);
  return (await inThread('init', { path, sql: readFileSync(SCHEMA_SQL_PATH, 'utf8') })).schemaDigest;
}

const count = (path: string, table: string) => queryDb<{ n: number }>(path, `SELECT count(*) AS n FROM ${table}`)[0]!.n;

describe('sqlite fresh start (seed §2.1) on the demo application', () => {
  it('approve path: the database recreated from schema.sql, validated, the service healthy, the old bytes kept for forensics', async () => {
    const t = await sqliteTarget(h, { seedBytes: 2_000_000, writeIntervalMs: 300 });
    await moreWrites(t, 2);
    const before = await t.stats();
    const id = `sqlite-fresh-start-approve-${h.taskQueue}`;
    const handle = await startRunbook(h, 'sqlite-fresh-start', { environment: t.envName, reason: 'init failed' }, id);
    const waiting = await approve(h, handle);
    expect(waiting.plan!.summary).toMatch(
      new RegExp(`^delete ${t.db} \\(.*\\) and initialise it again from sql file ${SCHEMA_SQL_PATH}: every row`),
    );
    const result = (await handle.result()) as RunbookResult;
    await saveHistory(h.client, id, 'approve-path', 'sqlite-fresh-start');

    expect(result.outcome).toBe('succeeded');
    expect(result.steps.map((s) => [s.name, s.status])).toEqual(
      [
        'lock target',
        'load environment',
        'inspect',
        'check space',
        'seal plan',
        'approval',
        'stop services',
        'forensic copy',
        'delete database',
        're-initialise',
        'validate',
        'start services',
        'health and smoke',
        'monitor',
        'report RTO',
      ].map((s) => [s, 'succeeded']),
    );
    expect(result.steps.find((s) => s.name === 're-initialise')!.result).toBe(
      `initialised from sql file ${SCHEMA_SQL_PATH}: 17 tables, 39 indexes`,
    );
    // the live database is schema.sql's, with only what the restarted service wrote since
    const live = await inThread('check', { path: t.db, integrity: 'full' });
    expect(live.integrity).toEqual(['ok']);
    expect(live.schemaDigest).toBe(await schemaOnly());
    expect(count(t.db, 'tasks')).toBeLessThan(before.tasks);
    expect((await t.health()).status).toBe(200);
    await moreWrites(t, 2);
    expect((await t.stats()).writeErrors).toBe(0);

    // the old database is in the forensic copy, whole, with every task it had
    const copy = forensicCopyOf(result);
    const old = join(
      scratchCopy(
        h,
        copy.files.map((f) => join(copy.dir, f.name)),
      ),
      'abathur.db',
    );
    expect(count(old, 'tasks')).toBeGreaterThanOrEqual(before.tasks);
    expect(queryDb(old, 'PRAGMA quick_check')).toEqual([{ quick_check: 'ok' }]);

    const rto = result.results!.rto as RtoReport;
    expect(rto.phases.map((p) => [p.phase, typeof p.ms])).toEqual([
      ['detect', 'number'],
      ['decide', 'number'],
      ['restore', 'number'],
      ['verify', 'number'],
      ['healthy', 'number'],
    ]);
    expect(rto.withinTarget).toBe(true);
    const extra = evidenceOf(result).extra as Record<string, unknown>;
    expect(extra).toMatchObject({ rto, servicesAffected: ['api'], initialisedFrom: `sql file ${SCHEMA_SQL_PATH}` });
    expect(extra.dataLoss).toMatch(/^every row of the old database is gone from the live one/);
  });

  it('abort during the monitoring window: the original database back, byte-identical, the service running on it', async () => {
    const t = await sqliteTarget(h, { seedBytes: 2_000_000, writeIntervalMs: 300 });
    await moreWrites(t, 2);
    const id = `sqlite-fresh-start-abort-${h.taskQueue}`;
    const handle = await startRunbook(h, 'sqlite-fresh-start', { environment: t.envName, monitorWindow: '2m' }, id);
    await approve(h, handle);
    await h.waitFor(handle, (s) => s.currentStep === 'monitor');
    expect(count(t.db, 'tasks')).toBeLessThan(20);
    await handle.signal(abortSignal, { by: 'bob', reason: 'the data is needed after all' });
    const result = (await handle.result()) as RunbookResult;
    const mainFile = t.fileDigest(t.db);
    await saveHistory(h.client, id, 'abort-during-monitoring', 'sqlite-fresh-start');

    expect(result.outcome).toBe('aborted');
    expect(result.compensations.map((c) => [c.step, c.status])).toEqual([
      ['start services', 'succeeded'],
      ['delete database', 'succeeded'],
      ['stop services', 'succeeded'],
    ]);
    // the database file is the one the forensic copy took (the restarted service writes into its WAL)
    const copy = forensicCopyOf(result);
    expect(mainFile).toBe(copy.files.find((f) => f.role === 'db')!.sha256);
    await healthy(t);
    await moreWrites(t, 1);
    const old = join(
      scratchCopy(
        h,
        copy.files.map((f) => join(copy.dir, f.name)),
      ),
      'abathur.db',
    );
    expect(count(t.db, 'tasks')).toBeGreaterThan(count(old, 'tasks'));
    expect((evidenceOf(result).extra as { dataLoss: string }).dataLoss).toBe('none: the old database was put back');
  });

  it('a target without sqlite.init is refused before anything changes', async () => {
    const t = await sqliteTarget(h, { seedBytes: 1_000_000, start: false, sqlite: { init: undefined } });
    const digest = t.fileDigest(t.db);
    const handle = await startRunbook(h, 'sqlite-fresh-start', { environment: t.envName });
    const { result } = await failureOf(handle);
    expect(result!.error).toContain('sqlite.init: not set');
    expect(result!.steps.find((s) => s.name === 'stop services')!.status).toBe('skipped');
    expect(t.fileDigest(t.db)).toBe(digest);
    expect(existsSync(join(t.backupsDir, 'forensics'))).toBe(false);
  });
});

describe('re-initialising (the activity)', () => {
  const log = pino({ level: 'silent' });
  const activities = () =>
    createSqliteRecoveryActivities({ environmentsDir: h.environmentsDir, log, signingKey: h.workerKey });

  it('an SQL file that fails halfway leaves nothing at the database path (one transaction, on a file renamed into place)', async () => {
    const bad = join(h.root, 'bad-schema.sql');
    writeFileSync(bad, 'CREATE TABLE tasks (id INTEGER PRIMARY KEY);\nCREATE TABLE oops (;\n');
    const t = await sqliteTarget(h, { seedBytes: 0, start: false, sqlite: { init: { sqlFile: bad } } });
    const err = await activities()
      .initSqliteDatabase({ environment: t.envName, target: 'app', tag: 'x' })
      .catch((e: Error) => e);
    expect((err as Error).message).toMatch(/bad-schema\.sql failed on a new database \(nothing of it kept\)/);
    expect(readdirSync(t.dataDir).filter((f) => f.startsWith('abathur.db') || f.includes('.init-'))).toEqual([]);
  });

  it('a command runs as argv in its cwd, sees RUNBOOK_SQLITE_DB, and must create the database', async () => {
    const script = [
      "import Database from 'better-sqlite3';",
      "import { readFileSync } from 'node:fs';",
      'const db = new Database(process.env.RUNBOOK_SQLITE_DB);',
      `db.exec(readFileSync(${JSON.stringify(SCHEMA_SQL_PATH)}, 'utf8'));`,
      'db.close();',
    ].join('\n');
    const t = await sqliteTarget(h, {
      seedBytes: 0,
      start: false,
      sqlite: { init: { command: [process.execPath, '--input-type=module', '-e', script], cwd: repoRoot } },
    });
    const acts = activities();
    const ref = { environment: t.envName, target: 'app', tag: 'y' };
    expect(await acts.initSqliteDatabase(ref)).toMatchObject({
      state: 'initialised',
      how: expect.stringMatching(/^command /),
    });
    expect(count(t.db, 'sqlite_master')).toBeGreaterThan(40);
    // a retry after it finished leaves it as it is
    expect(await acts.initSqliteDatabase(ref)).toMatchObject({ state: 'already' });
    const t2 = await sqliteTarget(h, {
      seedBytes: 0,
      start: false,
      sqlite: { init: { command: [process.execPath, '-e', 'process.exit(0)'] } },
    });
    await expect(acts.initSqliteDatabase({ ...ref, environment: t2.envName })).rejects.toThrow(
      /init command .* did not create/,
    );
  });
});
