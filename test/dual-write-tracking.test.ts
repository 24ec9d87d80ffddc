import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parse, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import type { CheckResult } from '../src/activities/dual-write/index.js';
import { incrementalDiff, type CheckSegment } from '../src/activities/dual-write/incremental.js';
import { readChanges, recheckKeys, type TrackingMarks } from '../src/activities/dual-write/tracked.js';
import { sha256 } from '../src/activities/digest.js';
import { diffStores, type DriftEntry } from '../src/activities/stores/diff.js';
import type { ObjectKey, ObjectStoreAdapter } from '../src/activities/stores/types.js';
import { objectId } from '../src/demo/seed-drift.js';
import type { RunbookResult } from '../src/shared/types.js';
import { runbook } from './support/cli.js';
import { dualWriteSuite, pairTarget, storedObject, type PairTarget } from './support/dual-write.js';
import { saveHistory } from './support/histories.js';
import { startRunbook } from './support/sqlite.js';

/**
 * Change tracking (`runbook dual-write track`, `incremental.tracking: trigger`) on real stores: the suite's
 * Postgres, object stores and SQLite files on disk. Every re-check that used the tracking must report exactly
 * what a full streaming merge reports; tracking that cannot be trusted must make the check read everything.
 */
const { h, pool } = dualWriteSuite();

const keyOf = (e: Pick<DriftEntry, 'objectId' | 'version' | 'class'>) => `${e.objectId}@${e.version}:${e.class}`;
async function truth(a: ObjectStoreAdapter, b: ObjectStoreAdapter): Promise<string[]> {
  const out: string[] = [];
  for await (const e of diffStores(a, b, {}, { mergeOnly: true })) out.push(keyOf(e));
  return out;
}
const flat = (segments: CheckSegment[]) => segments.flatMap((s) => s.drift.map(keyOf));

const object = storedObject;
/** the key seedDrift gives object i (version 2 for every third) */
const key = (i: number): ObjectKey => ({ objectId: objectId(i), version: i % 3 === 0 ? 2 : 1 });
const at = (i: number) => `${objectId(i)}@${key(i).version}`;

const track = (t: PairTarget, ...flags: string[]) =>
  runbook(['dual-write', 'track', '--env', t.envName, '--target', 'objects', ...flags], h.env());

async function check(t: PairTarget): Promise<CheckResult & { found: string[]; workflowId: string }> {
  const handle = await startRunbook(h, 'dual-write-check', { environment: t.envName, target: 'objects' });
  const result = (await handle.result()) as RunbookResult;
  expect(result.outcome, result.error).toBe('succeeded');
  const detection = result.extra!.detection as CheckResult;
  const found = readFileSync(detection.diff.path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => keyOf(JSON.parse(l) as DriftEntry));
  return { ...detection, found, workflowId: handle.workflowId };
}

/** the pair's Postgres table (side a) and the object store's index file (side b) */
const pgTable = (t: PairTarget) => t.where[0];
const indexFile = (t: PairTarget) => join(t.where[1], 'index.sqlite');

describe('change tracking: installed by the operator, read by dual-write-check', () => {
  it('a re-check reads only the marked keys and finds every change a full pass finds; status, prune and remove', async () => {
    const t = await pairTarget(
      h,
      pool,
      'postgres-objectstore',
      { objects: 3000, drift: { content_mismatch: 3, missing_in_b: 2, metadata_mismatch: 1 }, newer: 'a' },
      { incremental: { tracking: 'trigger' } },
    );
    // configured but not installed: today's behaviour, saying why
    const before = await check(t);
    expect(before).toMatchObject({ mode: 'full', total: 6 });
    expect(before.tracking).toMatch(
      /^not used: side a \(postgres\): change tracking is not installed on "dw_.*"; install it with `npx runbook dual-write track/,
    );
    const status = await track(t, '--status');
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^a \(postgres\): postgres table dw_\S+: change tracking is not installed/m);
    expect(status.stdout).toMatch(/^b \(store\): object store \S+: change tracking is not installed on objects/m);
    const untracked = await check(t);
    expect(untracked).toMatchObject({ mode: 'incremental', total: 6 });
    expect(untracked.why).toMatch(/^change tracking not used: side a \(postgres\): change tracking is not installed/);

    const installed = await track(t);
    expect(installed.code, installed.stderr).toBe(0);
    expect(installed.stdout).toMatch(
      /^a \(postgres\): .*changes table "public"\."dw_\S+_dr_changes", triggers .*: installed \(identity /m,
    );
    expect(installed.stdout).toMatch(/^b \(store\): .*changes table "objects_dr_changes".*: installed \(identity /m);
    const again = await track(t);
    expect(again.stdout).toMatch(/^a \(postgres\): .*: intact \(identity /m);
    // idempotent: the same installation (identity) both times
    const identity = (out: string, side: string) => new RegExp(`^${side} .*identity (\\S+)\\)$`, 'm').exec(out)![1];
    expect(identity(again.stdout, 'a')).toBe(identity(installed.stdout, 'a'));
    expect(identity(again.stdout, 'b')).toBe(identity(installed.stdout, 'b'));

    // the first check after installing reads everything and stores its marks; the next reads the marks only
    const first = await check(t);
    expect(first).toMatchObject({ mode: 'incremental', total: 6 });
    expect(first.tracking).toBe('not used: no change mark stored yet (the first check with tracking)');
    const quiet = await check(t);
    expect(quiet).toMatchObject({ mode: 'tracked', total: 6, tracking: 'used: 0 keys marked changed' });
    expect(quiet.stats).toMatchObject({ keys: 0, changed: 0, scannedA: 0, scannedB: 0 });

    // inserts, updates, deletes on both sides; an object rewritten with the same size; a difference repaired
    const [x] = await t.a.get([key(100)]);
    await t.a.put([object(x!.objectId, x!.version, 'changed in postgres', x!.updatedAt + 1)]);
    await t.a.put([object('obj-00001500-new', 1, 'only in postgres')]);
    await t.a.delete([key(2000)]);
    const [y] = await t.b.get([key(2500)]);
    await t.b.put([{ ...y!, updatedAt: y!.updatedAt + 7 }]);
    const [z] = await t.b.get([key(2700)]);
    const same = Buffer.from(z!.content.toString().split('').reverse().join(''));
    expect(same.length).toBe(z!.size);
    await t.b.put([{ ...z!, content: same, sha256: sha256(same) }]);
    await t.b.delete([key(2900)]);
    const lacked = t.injected.find((d) => d.class === 'missing_in_b')!;
    await t.b.put(await t.a.get([lacked]));
    const both = object('obj-00002950-new', 1, 'in both');
    await t.a.put([both]);
    await t.b.put([both]);

    const tracked = await check(t);
    expect(tracked.mode).toBe('tracked');
    await saveHistory(h.client, tracked.workflowId, 'tracked', 'dual-write-check');
    expect(tracked.found).toEqual(await truth(t.a, t.b));
    expect(tracked.found).toEqual(
      expect.arrayContaining([
        `${at(100)}:content_mismatch`,
        'obj-00001500-new@1:missing_in_b',
        `${at(2000)}:missing_in_a`,
        `${at(2500)}:metadata_mismatch`,
        `${at(2700)}:content_mismatch`,
        `${at(2900)}:missing_in_b`,
      ]),
    );
    expect(tracked.found).not.toContain(keyOf({ ...lacked, class: 'missing_in_b' }));
    expect(tracked.total).toBe(6 + 6 - 1);
    expect(tracked.stats).toMatchObject({ keys: 8 });
    expect(tracked.stats!.changed).toBeLessThanOrEqual(8);

    // prune: the marks the last check read go; the next check continues from its own
    const pruned = await track(t, '--prune');
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout).toMatch(/^a \(postgres\): .*: [1-9]\d* marks pruned$/m);
    expect(pruned.stdout).toMatch(/^b \(store\): .*: [1-9]\d* marks pruned$/m);
    await t.a.delete([key(10)]);
    const afterPrune = await check(t);
    expect(afterPrune).toMatchObject({ mode: 'tracked', tracking: 'used: 1 keys marked changed' });
    expect(afterPrune.found).toEqual(await truth(t.a, t.b));

    // removed: the checks go back to summing every segment, and say why
    const removed = await track(t, '--remove');
    expect(removed.stdout).toMatch(/^a \(postgres\): .*: change tracking removed$/m);
    expect(removed.stdout).toMatch(/note: .*incremental\.tracking is still trigger/);
    const { rows } = await pool.query(`SELECT to_regclass($1) AS t`, [`${pgTable(t)}_dr_changes`]);
    expect(rows[0].t).toBeNull();
    await t.a.put([object('obj-00000001-late', 1, 'after removal')]);
    const untrackedAgain = await check(t);
    expect(untrackedAgain.mode).toBe('incremental');
    expect(untrackedAgain.why).toMatch(/change tracking is not installed/);
    expect(untrackedAgain.found).toEqual(await truth(t.a, t.b));
  });

  it('lost tracking (trigger dropped, disabled, changes table truncated or emptied, reinstalled) makes the check read everything', async () => {
    const t = await pairTarget(
      h,
      pool,
      'postgres-objectstore',
      { objects: 1500, drift: { content_mismatch: 2 }, newer: 'a' },
      { incremental: { tracking: 'trigger' } },
    );
    expect((await track(t)).code).toBe(0);
    await check(t);
    expect((await check(t)).mode).toBe('tracked');
    const table = pgTable(t);

    const onPg = (sql: string) => () => pool.query(sql).then(() => {});
    const onIndex = (sql: string) => async () => {
      const db = new Database(indexFile(t));
      db.exec(sql);
      db.close();
    };
    // a change while the trigger is gone: only a full read can find it
    const lose = async (drop: () => Promise<void>, i: number, why: RegExp) => {
      await drop();
      // the write goes to the side whose tracking was lost
      const broken = why.source.includes('side b') ? 'b' : 'a';
      const side = t[broken];
      const [x] = await side.get([key(i)]);
      await side.put([object(x!.objectId, x!.version, `changed untracked ${i}`, x!.updatedAt + 1)]);
      const r = await check(t);
      expect(r.mode).toBe('incremental');
      expect(r.why).toMatch(why);
      expect(r.found).toContain(`${at(i)}:content_mismatch`);
      expect(r.found).toEqual(await truth(t.a, t.b));
      // reinstalled: a new identity, so the check after it reads everything once more, then the marks again
      expect((await track(t)).stdout).toMatch(new RegExp(`^${broken} \\(\\w+\\): .*: installed \\(identity`, 'm'));
      const reinstalled = await check(t);
      expect(reinstalled.mode).toBe('incremental');
      expect(reinstalled.why).toMatch(/installed again since the last check|no change mark stored yet/);
      expect((await check(t)).mode).toBe('tracked');
    };
    await lose(
      onPg(`DROP TRIGGER "${table}_dr_track_u" ON "${table}"`),
      200,
      /side a \(postgres\): trigger dw_\S+_dr_track_u is missing/,
    );
    await lose(
      onPg(`ALTER TABLE "${table}" DISABLE TRIGGER "${table}_dr_track_u"`),
      300,
      /trigger dw_\S+_dr_track_u is disabled/,
    );
    await lose(
      async () => {
        await pool.query(`ALTER TABLE "${table}" DISABLE TRIGGER "${table}_dr_track_u"`);
        await pool.query(`ALTER TABLE "${table}" ENABLE TRIGGER "${table}_dr_track_u"`);
      },
      400,
      /trigger dw_\S+_dr_track_u is not ENABLE ALWAYS \(it was disabled\)/,
    );
    await lose(onPg(`TRUNCATE "${table}_dr_changes"`), 500, /changes table "public"\."dw_\S+_dr_changes" was emptied/);
    await lose(
      onIndex('DELETE FROM objects_dr_changes'),
      600,
      /side b \(store\): changes table "objects_dr_changes" was emptied/,
    );
    await lose(
      onIndex('DROP TRIGGER objects_dr_track_d'),
      700,
      /side b \(store\): trigger objects_dr_track_d is missing/,
    );
  });

  it('a write still uncommitted when the check takes its marks is read by the next check; a TRUNCATE forces a full read', async () => {
    const t = await pairTarget(
      h,
      pool,
      'postgres-objectstore',
      { objects: 1000, drift: {}, newer: 'a' },
      { incremental: { tracking: 'trigger' } },
    );
    expect((await track(t)).code).toBe(0);
    await check(t);
    const table = pgTable(t);
    // an older transaction writes X and stays open; a younger one writes Y and commits first
    const slow = await pool.connect();
    try {
      await slow.query('BEGIN');
      await slow.query(
        `UPDATE "${table}" SET updated_at = updated_at + interval '5 seconds' WHERE object_id = $1 AND version = $2`,
        [objectId(50), key(50).version],
      );
      const [y] = await t.a.get([key(60)]);
      await t.a.put([object(y!.objectId, y!.version, 'committed first', y!.updatedAt + 1)]);
      const during = await check(t);
      expect(during.mode).toBe('tracked');
      expect(during.found).toEqual([`${at(60)}:content_mismatch`]);
      await slow.query('COMMIT');
    } finally {
      slow.release();
    }
    const after = await check(t);
    expect(after.mode).toBe('tracked');
    expect(after.found).toEqual([`${at(50)}:metadata_mismatch`, `${at(60)}:content_mismatch`]);
    expect(after.found).toEqual(await truth(t.a, t.b));

    // TRUNCATE names no keys: the check reads everything
    await pool.query(`TRUNCATE "${table}"`);
    const truncated = await check(t);
    expect(truncated.mode).toBe('incremental');
    expect(truncated.why).toBe('change tracking not used: side a (postgres): the table was truncated');
    expect(truncated.total).toBe(1000);
    expect(truncated.found).toEqual(await truth(t.a, t.b));
    expect((await check(t)).mode).toBe('tracked');
  });

  it('more changed keys than maxChangedKeys, or a due fullPassEvery, read every segment; a dry run installs nothing', async () => {
    const t = await pairTarget(
      h,
      pool,
      'postgres-objectstore',
      { objects: 800, drift: {}, newer: 'a' },
      { incremental: { tracking: 'trigger', maxChangedKeys: 5 } },
    );
    const dry = await startRunbook(h, 'dual-write-check', { environment: t.envName, target: 'objects', dryRun: true });
    expect(((await dry.result()) as RunbookResult).outcome).toBe('dry_run');
    expect((await t.a.tracking!.status()).intact).toBe(false);
    expect((await t.b.tracking!.status()).intact).toBe(false);

    expect((await track(t)).code).toBe(0);
    await check(t);
    await t.b.delete(Array.from({ length: 6 }, (_, i) => key(i * 100)));
    const many = await check(t);
    expect(many.mode).toBe('incremental');
    expect(many.why).toBe('change tracking not used: side b (store): more than 5 keys changed');
    expect(many.total).toBe(6);
    await t.b.delete([key(1)]);
    expect(await check(t)).toMatchObject({ mode: 'tracked', total: 7 });

    // a pass over every segment is due at every check with fullPassEvery 0s
    const file = join(h.environmentsDir, `${t.envName}.yaml`);
    const env = parse(readFileSync(file, 'utf8'));
    env.targets.objects.dualWrite.incremental.fullPassEvery = '0s';
    writeFileSync(file, stringify(env));
    await t.b.delete([key(2)]);
    const due = await check(t);
    expect(due).toMatchObject({ mode: 'incremental', total: 8 });
    expect(due.why).toBe('change tracking not used: a pass over every segment is due (incremental.fullPassEvery 0s)');
    expect(due.stats!.changed).toBe(1);
  });

  it('rounds of random writes on both sides: every tracked re-check equals a full pass (PG ↔ object store, PG ↔ SQLite)', async () => {
    for (const pair of ['postgres-objectstore', 'postgres-sqlite'] as const) {
      const t = await pairTarget(h, pool, pair, { objects: 2000, drift: { content_mismatch: 4, missing_in_a: 2 } });
      for (const s of [t.a, t.b]) expect((await s.tracking!.install()).intact).toBe(true);
      const labels = { a: 'a', b: 'b' };
      let marks: TrackingMarks | undefined = (await readChanges(t, labels, undefined, 1000)).marks;
      let state = (await incrementalDiff(t.a, t.b, undefined, { segmentRows: 64, windowSegments: 16, readRows: 65536 }))
        .segments;
      let seed = 7;
      const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
      for (let round = 0; round < 4; round++) {
        for (let op = 0; op < 25; op++) {
          const side = rand(2) ? t.a : t.b;
          const k = key(rand(2200));
          const [current] = await side.get([k]);
          switch (rand(4)) {
            case 0:
              await side.put([object(k.objectId, k.version, `round ${round} op ${op}`, Date.UTC(2026, 7, 1) + op)]);
              break;
            case 1:
              if (current) await side.put([{ ...current, updatedAt: current.updatedAt + 1 }]);
              break;
            case 2:
              await side.delete([k]);
              break;
            default:
              // the same object written to both sides: consistent again
              if (current) await (side === t.a ? t.b : t.a).put([current]);
          }
        }
        const changes = await readChanges(t, labels, marks, 1000);
        expect(changes.ok).toBe(true);
        if (!changes.ok) return;
        const r = await recheckKeys(t.a, t.b, state, changes.keys, { batch: 7 });
        expect(flat(r.segments)).toEqual(await truth(t.a, t.b));
        state = r.segments;
        marks = changes.marks;
      }
      // a pass over the summaries after tracked re-checks agrees too (the touched segments are compared again)
      const summed = await incrementalDiff(t.a, t.b, state, { segmentRows: 64, windowSegments: 16, readRows: 65536 });
      expect(flat(summed.segments)).toEqual(await truth(t.a, t.b));
      expect(summed.stats.reused).toBeGreaterThan(0);
    }
  });
});
