import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { expect } from 'vitest';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import Database from 'better-sqlite3';
import { chainGenesis, verifyChain } from '../../src/activities/evidence/chain.js';
import type { EvidenceDocument } from '../../src/activities/evidence/document.js';
import { manifestPath, type BackupManifest } from '../../src/activities/sqlite/backup-files.js';
import type { ForensicCopy } from '../../src/activities/sqlite/forensics.js';
import { inThread } from '../../src/activities/sqlite/thread.js';
import { SCHEMA } from '../../src/demo/sqlite-app/schema.js';
import { approveSignal } from '../../src/shared/messages.js';
import type { RunbookResult, RunbookStatus } from '../../src/shared/types.js';
import type { Harness } from './harness.js';
import { startRunbook, type SqliteTestTarget } from './sqlite.js';

// What the SQLite restore and fresh-start tests share: backups, approvals, failures, evidence, database files.

let counter = 0;

export const backupsOf = (t: SqliteTestTarget): string[] =>
  (existsSync(t.backupsDir) ? readdirSync(t.backupsDir) : []).filter((f) => f.endsWith('.db.gz')).sort();

export const manifestOf = (t: SqliteTestTarget, file: string): BackupManifest =>
  JSON.parse(readFileSync(manifestPath(t.backupsDir, file), 'utf8'));

/** A verified backup by the sqlite-backup runbook; its file name. */
export async function takeBackup(h: Harness, t: SqliteTestTarget): Promise<string> {
  const before = new Set(backupsOf(t));
  const result = (await (await startRunbook(h, 'sqlite-backup', { environment: t.envName })).result()) as RunbookResult;
  expect(result.outcome).toBe('succeeded');
  const file = backupsOf(t).find((f) => !before.has(f));
  expect(file).toBeDefined();
  return file!;
}

/** Waits until the service has committed `n` more writes. */
export async function moreWrites(t: SqliteTestTarget, n: number): Promise<void> {
  const start = (await t.stats()).writes;
  for (let i = 0; (await t.stats()).writes < start + n; i++) {
    if (i > 300) throw new Error('the service stopped writing');
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function approve(h: Harness, handle: WorkflowHandle, by = 'alice'): Promise<RunbookStatus> {
  const status = await h.waitForApproval(handle);
  await handle.signal(approveSignal, { by, planHash: status.planHash! });
  return status;
}

/** The failure a run ended with: its type and the result it carries. */
export async function failureOf(
  handle: WorkflowHandle,
): Promise<{ type?: string; message: string; result?: RunbookResult }> {
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  const failure = cause as ApplicationFailure;
  return {
    type: failure.type ?? undefined,
    message: failure.message,
    result: failure.details?.[0] as RunbookResult | undefined,
  };
}

/** The run's evidence document, its chain checked. */
export function evidenceOf(result: RunbookResult): EvidenceDocument {
  const doc = JSON.parse(readFileSync(result.evidence!.path, 'utf8')) as EvidenceDocument;
  expect(verifyChain(chainGenesis(doc.workflowId, doc.runId), doc.chain, doc.chainHead)).toEqual([]);
  return doc;
}

/** Copies of files (a database main file alone, a forensic copy's files) in a scratch directory of their own. */
export function scratchCopy(h: Harness, files: string[]): string {
  const dir = join(h.root, `scratch-${counter++}`);
  mkdirSync(dir, { recursive: true });
  for (const f of files) if (existsSync(f)) copyFileSync(f, join(dir, f.split('/').pop()!));
  return dir;
}

/** The backup's database, decompressed into a scratch file. */
export function gunzipBackup(h: Harness, t: SqliteTestTarget, file: string): string {
  const path = join(h.root, `backup-${counter++}.db`);
  writeFileSync(path, gunzipSync(readFileSync(join(t.backupsDir, file))));
  return path;
}

/** The demo schema's tables with rows of their own (not the FTS5 table and its WITHOUT ROWID shadow tables). */
const CONTENT_TABLES = Object.values(SCHEMA).flatMap((m) => m.tables.filter((t) => !m.virtualTables.includes(t)));

/** Per-table content digests (rows in rowid order) of a database file. */
export const tableDigests = async (path: string) =>
  (await inThread('digests', { path, tables: CONTENT_TABLES })).tables;

/** Waits until the service answers /health with 200 (a service an undo started may still be opening). */
export async function healthy(t: SqliteTestTarget): Promise<void> {
  for (let i = 0; (await t.health()).status !== 200; i++) {
    if (i > 150) throw new Error(`not healthy: ${(await t.health()).body}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One query on a database file (read-only; a live one too: WAL readers do not block its writer). */
export function queryDb<T>(path: string, sql: string, ...params: unknown[]): T[] {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

/** The run's forensic copy (its manifest), from the evidence. */
export function forensicCopyOf(result: RunbookResult): ForensicCopy {
  const dir = (evidenceOf(result).extra as { forensicCopy?: { dir: string } }).forensicCopy!.dir;
  return JSON.parse(readFileSync(join(dir, 'forensics.json'), 'utf8')) as ForensicCopy;
}
