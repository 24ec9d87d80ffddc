import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import Database from 'better-sqlite3';
import { manifestPath, type BackupManifest } from '../src/activities/sqlite/backup-files.js';
import { inThread } from '../src/activities/sqlite/thread.js';
import { SCHEMA } from '../src/demo/sqlite-app/schema.js';
import { INITIAL_APP_FLAGS } from '../src/demo/sqlite-environment.js';
import { ErrorType } from '../src/shared/constants.js';
import { abortSignal, approveSignal } from '../src/shared/messages.js';
import type { RunbookResult } from '../src/shared/types.js';
import { Harness } from './support/harness.js';
import { saveHistory } from './support/histories.js';
import { sqliteTarget, startRunbook, type SqliteTestTarget } from './support/sqlite.js';

/** sqlite-milestone-rollback (seed §2.2, §2.3) on the demo application: real files, a real writing service. */
const h = new Harness();
beforeAll(() => h.start());
afterAll(() => h.close());

type Digests = { schemaDigest: string; tables: Record<string, { rows: number; sha256: string }> };
interface MilestoneReport {
  milestone: string;
  backup?: string;
  before?: Digests;
  after?: Record<string, { rows: number; sha256: string }>;
  flags?: { before: Record<string, string | null>; after: Record<string, string> };
}
const CORE = SCHEMA.core.tables as readonly string[];

async function approve(handle: WorkflowHandle): Promise<void> {
  const waiting = await h.waitForApproval(handle);
  await handle.signal(approveSignal, { by: 'alice', planHash: waiting.planHash! });
}

/** sqlite_master names (tables, indexes, triggers) of the live database (read while the service runs). */
function objectNames(db: string): string[] {
  const conn = new Database(db, { readonly: true });
  try {
    return conn.prepare("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").pluck().all() as string[];
  } finally {
    conn.close();
  }
}

/** The pre-rollback backup, decompressed beside the test's files, and its table digests. */
async function backupDigests(t: SqliteTestTarget, file: string, tables?: string[]): Promise<Digests> {
  const copy = join(h.root, `${t.envName}-${file}.db`);
  writeFileSync(copy, gunzipSync(readFileSync(join(t.backupsDir, file))));
  return inThread('digests', { path: copy, tables });
}

async function healthy(t: SqliteTestTarget): Promise<void> {
  for (let i = 0; (await t.health()).status !== 200; i++) {
    if (i > 150) throw new Error(`not healthy: ${(await t.health()).body}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function writing(t: SqliteTestTarget): Promise<void> {
  await healthy(t);
  const s1 = await t.stats();
  for (let i = 0; (await t.stats()).writes <= s1.writes + 2; i++) {
    if (i > 100) throw new Error('the service does not write');
    await new Promise((r) => setTimeout(r, 100));
  }
  expect((await t.stats()).writeErrors).toBe(0);
  expect((await t.health()).status).toBe(200);
}

const milestoneObjects = (m: 'memory' | 'vector') => [
  ...SCHEMA[m].tables,
  ...SCHEMA[m].shadowTables,
  ...SCHEMA[m].indexes,
  ...SCHEMA[m].triggers,
];

describe('sqlite milestone rollback', () => {
  it('vector then memory: each leaves the core byte-identical, drops its objects, turns its flags off', async () => {
    const t = await sqliteTarget(h, { seedBytes: 24_000_000 });
    await writing(t);

    // ---- milestone 3: vector search (§2.3)
    const id = `sqlite-milestone-vector-${h.taskQueue}`;
    const handle = await startRunbook(
      h,
      'sqlite-milestone-rollback',
      { environment: t.envName, milestone: 'vector' },
      id,
    );
    const waiting = await h.waitForApproval(handle);
    const statements = waiting.plan!.details!.statements as string[];
    expect(statements).toEqual([
      'DROP TRIGGER IF EXISTS "trg_embeddings_mark_synced"',
      ...SCHEMA.vector.indexes.map((i) => `DROP INDEX IF EXISTS "${i}"`),
      'DROP TABLE IF EXISTS "document_search"',
      'DROP TABLE IF EXISTS "document_embeddings"',
      'DROP TABLE IF EXISTS "document_embeddings_data"',
      `UPDATE "document_index" SET "sync_status" = 'pending', "embedding_blob" = NULL`,
    ]);
    expect(waiting.plan!.changes.map((c) => c.item)).toEqual(
      expect.arrayContaining([
        'service api',
        'table document_embeddings',
        'index idx_embeddings_model',
        'flag SEMANTIC_SEARCH_ENABLED',
        'flag EMBEDDING_GENERATION',
        'document_index.sync_status, embedding_blob',
      ]),
    );
    await handle.signal(approveSignal, { by: 'alice', planHash: waiting.planHash! });
    const vector = (await handle.result()) as RunbookResult;
    await saveHistory(h.client, id, 'vector-approve-path', 'sqlite-milestone-rollback');
    expect(vector.outcome, vector.error).toBe('succeeded');
    expect(vector.steps.map((s) => [s.name, s.status])).toEqual([
      ['lock target', 'succeeded'],
      ['load environment', 'succeeded'],
      ['inspect', 'succeeded'],
      ['seal plan', 'succeeded'],
      ['approval', 'succeeded'],
      ['stop services', 'succeeded'],
      ['checkpoint', 'succeeded'],
      ['pre-rollback backup', 'succeeded'],
      ['digest tables', 'succeeded'],
      ['drop milestone', 'succeeded'],
      ['verify', 'succeeded'],
      ['flags off', 'succeeded'],
      ['start services', 'succeeded'],
      ['health check', 'succeeded'],
      ['monitor', 'succeeded'],
    ]);
    const vr = vector.extra as unknown as MilestoneReport;
    // the kept (core) tables: the runbook's digests before the drop and after it, and the pre-rollback backup's
    const core = Object.fromEntries(CORE.map((c) => [c, vr.before!.tables[c]]));
    expect(vr.after).toEqual(core);
    expect((await backupDigests(t, vr.backup!, [...CORE])).tables).toEqual(core);
    expect(existsSync(manifestPath(t.backupsDir, vr.backup!))).toBe(true);
    expect(vr.backup).toMatch(/^abathur_.*-prevector[a-z0-9]{6}\.db\.gz$/);
    const names = objectNames(t.db);
    for (const o of milestoneObjects('vector')) expect(names, o).not.toContain(o);
    for (const o of [...SCHEMA.core.tables, ...SCHEMA.memory.tables, ...SCHEMA.memory.indexes])
      expect(names).toContain(o);
    expect(readFileSync(t.flagsFile, 'utf8')).toBe(INITIAL_APP_FLAGS.replaceAll('=true', '=false'));
    expect(vr.flags!.before).toEqual({
      SEMANTIC_SEARCH_ENABLED: 'true',
      BACKGROUND_DOCUMENT_SYNC: 'true',
      EMBEDDING_GENERATION: 'true',
    });
    await writing(t);
    const stats = await t.stats();
    expect(stats.milestones).toMatchObject({ memory: true, vector: false });
    const conn = new Database(t.db, { readonly: true });
    expect(
      conn
        .prepare("SELECT count(*) FROM document_index WHERE sync_status != 'pending' OR embedding_blob IS NOT NULL")
        .pluck()
        .get(),
    ).toBe(0);
    conn.close();

    // ---- milestone 2: memory system (§2.2), now that nothing references it
    const second = await startRunbook(h, 'sqlite-milestone-rollback', { environment: t.envName, milestone: 'memory' });
    await approve(second);
    const memory = (await second.result()) as RunbookResult;
    expect(memory.outcome, memory.error).toBe('succeeded');
    expect(memory.steps.find((s) => s.name === 'flags off')).toMatchObject({ status: 'skipped' });
    const mr = memory.extra as unknown as MilestoneReport;
    const core2 = Object.fromEntries(CORE.map((c) => [c, mr.before!.tables[c]]));
    expect(mr.after).toEqual(core2);
    expect((await backupDigests(t, mr.backup!, [...CORE])).tables).toEqual(core2);
    const left = objectNames(t.db);
    for (const o of milestoneObjects('memory')) expect(left, o).not.toContain(o);
    expect(left.sort()).toEqual([...SCHEMA.core.tables, ...SCHEMA.core.indexes, ...SCHEMA.core.triggers].sort());
    await writing(t);
    expect((await t.stats()).milestones).toMatchObject({ memory: false, vector: false });
  }, 240_000);

  it('memory while the vector tables still reference it: refused before anything changes; unknown milestone', async () => {
    const t = await sqliteTarget(h, { seedBytes: 8_000_000 });
    const pid = (await t.stats()).pid;
    const handle = await startRunbook(h, 'sqlite-milestone-rollback', { environment: t.envName, milestone: 'memory' });
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause.type).toBe(ErrorType.InvalidInput);
    expect(cause.message).toMatch(/document_embeddings \(\d+ rows\) references document_index: roll back vector first/);
    const status = (cause.details![0] as RunbookResult).steps;
    expect(status.find((s) => s.name === 'inspect')!.status).toBe('failed');
    expect(status.filter((s) => s.status === 'succeeded').map((s) => s.name)).toEqual([
      'lock target',
      'load environment',
    ]);
    // nothing changed: every object there, flags as they were, no backup, the same service process
    const names = objectNames(t.db);
    for (const o of [...milestoneObjects('memory'), ...milestoneObjects('vector')]) expect(names).toContain(o);
    expect(readFileSync(t.flagsFile, 'utf8')).toBe(INITIAL_APP_FLAGS);
    expect(existsSync(t.backupsDir)).toBe(false);
    expect((await t.stats()).pid).toBe(pid);

    const unknown = await startRunbook(h, 'sqlite-milestone-rollback', { environment: t.envName, milestone: 'nope' });
    const e2 = (await unknown.result().catch((e: unknown) => e)) as WorkflowFailedError;
    expect((e2.cause as ApplicationFailure).type).toBe(ErrorType.InvalidInput);
    expect(e2.cause!.message).toContain('"nope" is not a milestone');
    expect(e2.cause!.message).toContain('(known: memory, vector)');
  });

  it('abort after the drop (while monitoring): the pre-rollback database is back, flags back, service running', async () => {
    // one write a second: the restored file stays as installed (the writes wait in the WAL, no checkpoint)
    const t = await sqliteTarget(h, { seedBytes: 20_000_000, writeIntervalMs: 1000 });
    const id = `sqlite-milestone-abort-${h.taskQueue}`;
    const handle = await startRunbook(
      h,
      'sqlite-milestone-rollback',
      { environment: t.envName, milestone: 'vector' },
      id,
    );
    await approve(handle);
    await h.waitFor(handle, (s) => s.currentStep === 'monitor');
    expect(readFileSync(t.flagsFile, 'utf8')).toBe(INITIAL_APP_FLAGS.replaceAll('=true', '=false'));
    await handle.signal(abortSignal, { by: 'carol', reason: 'search is needed after all' });
    const result = (await handle.result()) as RunbookResult;
    await saveHistory(h.client, id, 'abort-after-drop', 'sqlite-milestone-rollback');
    expect(result.outcome).toBe('aborted');
    expect(result.compensations.map((c) => [c.step, c.status])).toEqual([
      ['flags off', 'succeeded'],
      ['drop milestone', 'succeeded'],
      ['pre-rollback backup', 'succeeded'],
      ['stop services', 'succeeded'],
    ]);
    const report = result.extra as unknown as MilestoneReport;
    expect(readFileSync(t.flagsFile, 'utf8')).toBe(INITIAL_APP_FLAGS);
    await healthy(t);
    expect((await t.stats()).milestones).toMatchObject({ memory: true, vector: true });

    // the main file is the pre-rollback backup's bytes; every table and the schema as they were before the drop
    const manifest = JSON.parse(readFileSync(manifestPath(t.backupsDir, report.backup!), 'utf8')) as BackupManifest;
    process.kill(Number(readFileSync(t.pidFile, 'utf8')), 'SIGKILL');
    const copy = join(h.root, `${t.envName}-after-abort.db`);
    copyFileSync(t.db, copy);
    expect(t.fileDigest(copy)).toBe(manifest.raw.sha256);
    const after = await inThread('digests', { path: copy });
    expect(after).toEqual(report.before);
    expect(Object.keys(after.tables)).toEqual(expect.arrayContaining(['document_embeddings', 'document_search']));
  });
});
