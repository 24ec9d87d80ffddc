import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { WorkflowFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import type { RunbookResult } from '../src/shared/types.js';
import { dualWriteSuite, pairTarget, startDualWrite, type Pair, type PairTarget } from './support/dual-write.js';

const { h, pool } = dualWriteSuite();

const digest = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Every file below `dir`: its path relative to `dir` and the digest of its bytes. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(dir)) return out;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = digest(p);
    }
  };
  walk(dir);
  return out;
}

/** A SQLite file and its siblings (-wal, -shm, -journal): names and bytes. */
function sqliteFiles(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dirname(path)))
    if (name.startsWith(basename(path))) out[name] = digest(join(dirname(path), name));
  return out;
}

/** A Postgres side: every row in key order (content as hex), and the table's indexes, triggers and columns. */
async function pgState(table: string): Promise<unknown> {
  const rows = await pool.query(
    `SELECT *, encode(content, 'hex') AS content FROM "${table}" ORDER BY object_id COLLATE "C", version`,
  );
  const indexes = await pool.query(`SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 ORDER BY 1`, [
    table,
  ]);
  const triggers = await pool.query(
    `SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal ORDER BY 1`,
    [table],
  );
  const columns = await pool.query(
    `SELECT attname, atttypid, attnotnull FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [table],
  );
  return { rows: rows.rows, indexes: indexes.rows, triggers: triggers.rows, columns: columns.rows };
}

/** Both sides exactly as they are on disk and in Postgres. */
async function sides(t: PairTarget, pair: Pair): Promise<unknown[]> {
  const kinds = pair.split('-');
  return Promise.all(
    kinds.map(async (kind, i) => {
      const where = t.where[i]!;
      if (kind === 'postgres') return pgState(where);
      if (kind === 'sqlite') return sqliteFiles(where);
      return tree(where);
    }),
  );
}

/** Closes the test's own handles on the stores (so SQLite files are as nobody has them open). */
async function letGo(t: PairTarget): Promise<void> {
  await Promise.all([t.a.close(), t.b.close()]);
}

describe('a dry run changes nothing in either store', () => {
  it.each<Pair>(['postgres-objectstore', 'sqlite-objectstore', 'postgres-sqlite'])(
    '%s: critical drift detected, isolated and planned; both sides byte-identical after',
    async (pair) => {
      const t = await pairTarget(h, pool, pair, {
        objects: 150,
        drift: { missing_in_a: 2, missing_in_b: 3, content_mismatch: 4, metadata_mismatch: 2 },
        newer: 'b',
      });
      await letGo(t);
      // a SQLite side in the rollback-journal mode an application may well have chosen: reading must not switch it
      if (pair !== 'postgres-objectstore') {
        const db = new Database(t.where[pair === 'postgres-sqlite' ? 1 : 0]);
        db.pragma('journal_mode = DELETE');
        db.close();
      }
      const before = await sides(t, pair);
      const handle = await startDualWrite(h, t, { dryRun: true });
      const result = (await handle.result()) as RunbookResult;
      expect(result.outcome).toBe('dry_run');
      expect(result.plan!.summary).toContain('11 objects differ');
      expect(result.plan!.summary).toContain('severity critical');
      for (const step of ['detect', 'isolate', 'decide direction'])
        expect(result.steps.find((s) => s.name === step)!.status).toBe('succeeded');
      expect(await sides(t, pair)).toEqual(before);
    },
  );

  it('stores that are not prepared are refused naming the fix, and left as they were', async () => {
    const t = await pairTarget(h, pool, 'sqlite-objectstore', { objects: 40, drift: { missing_in_b: 2 } });
    await letGo(t);
    // an object-store index written before fingerprints were stored: a writable open would migrate it
    const index = new Database(join(t.where[1], 'index.sqlite'));
    index.exec('DROP TRIGGER objects_fp_invalidate; DROP INDEX objects_key_fp; ALTER TABLE objects DROP COLUMN fp');
    index.close();
    const before = await sides(t, 'sqlite-objectstore');
    const handle = await startDualWrite(h, t, { dryRun: true });
    const failed = await handle.result().catch((e: unknown) => e);
    const result = ((failed as WorkflowFailedError).cause as ApplicationFailure).details![0] as RunbookResult;
    expect(result.steps.find((s) => s.name === 'load environment')!.error).toMatch(
      /index\.sqlite has no fingerprint column .*run `npx runbook dual-write prepare --env <env> --target <target>`/,
    );
    expect(result.steps.find((s) => s.name === 'load environment')!.attempts).toBe(1);
    expect(await sides(t, 'sqlite-objectstore')).toEqual(before);
  });

  it('a store path that does not exist is refused, and nothing is created there', async () => {
    const t = await pairTarget(h, pool, 'sqlite-objectstore', { objects: 10, drift: { missing_in_b: 1 } });
    await letGo(t);
    const envFile = join(h.environmentsDir, `${t.envName}.yaml`);
    const { writeFileSync } = await import('node:fs');
    const wrongRoot = `${t.where[1]}-typo`;
    const wrongFile = `${t.where[0]}-typo`;
    for (const [from, to] of [
      [t.where[1], wrongRoot],
      [t.where[0], wrongFile],
    ] as const) {
      writeFileSync(envFile, readFileSync(envFile, 'utf8').replace(`${from}\n`, `${to}\n`));
      const handle = await startDualWrite(h, t, { dryRun: true });
      const failed = await handle.result().catch((e: unknown) => e);
      const result = ((failed as WorkflowFailedError).cause as ApplicationFailure).details![0] as RunbookResult;
      expect(result.steps.find((s) => s.name === 'load environment')!.error).toContain(to);
      expect(existsSync(to)).toBe(false);
      writeFileSync(envFile, readFileSync(envFile, 'utf8').replace(`${to}\n`, `${from}\n`));
    }
  });
});
