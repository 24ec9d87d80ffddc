/**
 * What change tracking costs the writers (bench/dual-write/incremental.ts): the same single-row writes on stores
 * without tracking and with it installed (the triggers of `runbook dual-write track`), on small stores of their
 * own beside the 1M pair. And the 100 changed rows the re-check is measured after.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { sha256 } from '../../src/activities/digest.js';
import { ObjectStore } from '../../src/activities/stores/object-store.js';
import { PostgresTableStore } from '../../src/activities/stores/postgres-table.js';
import type { ChangeTracking, ObjectKey, ObjectStoreAdapter, StoredObject } from '../../src/activities/stores/types.js';
import { objectId } from '../../src/demo/seed-drift.js';
import { fmtInt, fmtMs, timed } from './format.js';
import { DW_OBJECTS, FP_COLUMN } from './settings.js';

export const CHANGES = 100;

export function fresh(id: string, text: string, version = 1): StoredObject {
  const content = Buffer.from(text);
  const t = Date.UTC(2026, 6, 1);
  return { objectId: id, version, content, size: content.length, sha256: sha256(content), createdAt: t, updatedAt: t };
}

/** 100 rows changed, spread over the key space: what a busy few minutes of dual writes going wrong leaves. */
export async function changeRows(a: ObjectStoreAdapter, b: ObjectStoreAdapter): Promise<string> {
  const at = (i: number): ObjectKey => ({
    objectId: objectId(Math.floor(((i + 0.5) * DW_OBJECTS) / CHANGES)),
    version: 1,
  });
  // seedDrift gives each id version 1 or 2: the one a holds
  const wanted = Array.from({ length: CHANGES }, (_, i) => at(i)).flatMap((k) => [k, { ...k, version: 2 }]);
  const keys = (await a.getMeta(wanted)).map((m) => ({ objectId: m.objectId, version: m.version }));
  if (keys.length !== CHANGES) throw new Error(`expected ${CHANGES} keys to change, found ${keys.length}`);
  const take = (from: number, n: number) => keys.slice(from, from + n);
  const contentOnA = take(0, 40);
  for (const k of contentOnA) await a.put([fresh(k.objectId, `changed on postgres ${k.objectId}`, k.version)]);
  const metaOnB = take(40, 20);
  for (const o of await a.get(metaOnB)) await b.put([{ ...o, updatedAt: o.updatedAt + 1000 }]);
  const inserts = take(60, 20).map((k) => fresh(`${k.objectId}-new`, `new on postgres ${k.objectId}`));
  await a.put(inserts);
  const deletes = take(80, 20);
  await b.delete(deletes);
  return `40 content changes in Postgres, 20 metadata changes and 20 deletes in the object store, 20 inserts in Postgres (${contentOnA.length + metaOnB.length + inserts.length + deletes.length} rows)`;
}

export interface WriteCost {
  label: string;
  n: number;
  /** medians of the alternating rounds */
  without: number;
  with: number;
}

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

/**
 * `write(i)` for i < n, timed without tracking and with it, alternating (remove, install) `rounds` times so that
 * both see the same machine; medians.
 */
async function alternate(
  label: string,
  tracking: ChangeTracking,
  n: number,
  rounds: number,
  write: (tag: number) => Promise<void>,
): Promise<WriteCost> {
  const without: number[] = [];
  const withTracking: number[] = [];
  await write(-1);
  for (let r = 0; r < rounds; r++) {
    await tracking.remove();
    without.push((await timed(() => write(2 * r))).ms);
    await tracking.install();
    withTracking.push((await timed(() => write(2 * r + 1))).ms);
  }
  await tracking.remove();
  return { label, n, without: median(without), with: median(withTracking) };
}

/**
 * What the triggers add to single-row writes, on stores of their own beside the 1M pair (`n` rows each): Postgres
 * single-row UPDATEs (the stored-fingerprint trigger fires too), each its own transaction and all in one; the
 * object store index's own upsert statement (as ObjectStore.put runs it, without the blob), likewise.
 */
export async function writeCosts(
  pool: pg.Pool,
  table: string,
  root: string,
  n: number,
  rounds: number,
): Promise<WriteCost[]> {
  const ids = Array.from({ length: n }, (_, i) => `w-${String(i).padStart(6, '0')}`);
  const pgStore = new PostgresTableStore({ pool, table, create: true, columns: { fingerprint: FP_COLUMN } });
  await pgStore.init();
  await pgStore.put(ids.map((id) => fresh(id, `seed ${id}`)));
  const update = `UPDATE ${pg.escapeIdentifier(table)} SET updated_at = updated_at + interval '1 millisecond' WHERE object_id = $1 AND version = 1`;
  const client = await pool.connect();
  const os = await ObjectStore.open(join(root, 'writes'));
  await os.put(ids.map((id) => fresh(id, `seed ${id}`)));
  await os.close();
  const db = new Database(join(root, 'writes', 'index.sqlite'));
  db.pragma('synchronous = FULL');
  const upsert = db.prepare(
    `INSERT INTO objects (object_id, version, sha256, size, created_at, updated_at, fp) VALUES (?, 1, ?, 1, 0, ?, ?)
     ON CONFLICT (object_id, version) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size, created_at = excluded.created_at, updated_at = excluded.updated_at, fp = excluded.fp`,
  );
  const osTracking = new ObjectStore({ root: join(root, 'writes') });
  const row = (id: string, tag: number) => upsert.run(id, '0'.repeat(64), tag, tag);
  try {
    return [
      await alternate(
        'Postgres: single-row UPDATE, each its own transaction',
        pgStore.tracking,
        n,
        rounds,
        async () => {
          for (const id of ids) await client.query(update, [id]);
        },
      ),
      await alternate('Postgres: single-row UPDATEs in one transaction', pgStore.tracking, n, rounds, async () => {
        await client.query('BEGIN');
        for (const id of ids) await client.query(update, [id]);
        await client.query('COMMIT');
      }),
      await alternate(
        'object store index: the upsert of a put, each its own transaction',
        osTracking.tracking,
        n,
        rounds,
        async (tag) => {
          for (const id of ids) row(id, tag);
        },
      ),
      await alternate(
        'object store index: the upserts of a put of many objects, one transaction',
        osTracking.tracking,
        n,
        rounds,
        async (tag) => {
          db.transaction(() => {
            for (const id of ids) row(id, tag);
          })();
        },
      ),
    ];
  } finally {
    client.release();
    db.close();
    await osTracking.close();
  }
}

export const writeCostRows = (costs: WriteCost[]): string[] => [
  '| writes | without tracking | with tracking | added per row |',
  '|---|---:|---:|---:|',
  ...costs.map(
    (c) =>
      `| ${c.label}, ${fmtInt(c.n)} rows | ${fmtMs(c.without)} | ${fmtMs(c.with)} | ${(((c.with - c.without) / c.n) * 1000).toFixed(0)} µs (${(((c.with - c.without) / c.without) * 100).toFixed(0)} %) |`,
  ),
];
