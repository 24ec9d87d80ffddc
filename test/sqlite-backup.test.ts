import { readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import Database from 'better-sqlite3';
import {
  listBackups,
  manifestPath,
  signatureProblem,
  writeManifest,
  type BackupManifest,
} from '../src/activities/sqlite/backup-files.js';
import { ErrorType } from '../src/shared/constants.js';
import type { RunbookResult } from '../src/shared/types.js';
import { Harness } from './support/harness.js';
import { saveHistory } from './support/histories.js';
import { sqliteTarget, startRunbook } from './support/sqlite.js';

const h = new Harness();
beforeAll(() => h.start());
afterAll(() => h.close());

const manifestOf = (dir: string, file: string): BackupManifest =>
  JSON.parse(readFileSync(manifestPath(dir, file), 'utf8'));

describe('sqlite backup (seed §3.1, §3.2) on the demo application while it writes', () => {
  it('takes a consistent, verified, signed backup while the service keeps writing, then applies retention', async () => {
    const t = await sqliteTarget(h, { seedBytes: 12_000_000 });
    const before = await t.stats();
    const id = `sqlite-backup-${h.taskQueue}`;
    const handle = await startRunbook(h, 'sqlite-backup', { environment: t.envName, tag: 'manual' }, id);
    const result = (await handle.result()) as RunbookResult;
    await saveHistory(h.client, id, 'while-writing', 'sqlite-backup');
    const after = await t.stats();

    expect(result.outcome).toBe('succeeded');
    expect(result.steps.map((s) => [s.name, s.status])).toEqual([
      ['lock target', 'succeeded'],
      ['load environment', 'succeeded'],
      ['inspect database', 'succeeded'],
      ['seal plan', 'succeeded'],
      ['checkpoint', 'succeeded'],
      ['copy', 'succeeded'],
      ['compress', 'succeeded'],
      ['verify', 'succeeded'],
      ['publish', 'succeeded'],
      ['retention', 'succeeded'],
    ]);
    // the service wrote throughout, without a single failed write
    expect(after.writes).toBeGreaterThan(before.writes);
    expect(after.writeErrors).toBe(0);

    const files = readdirSync(t.backupsDir).filter((f) => f.endsWith('.db.gz'));
    expect(files).toHaveLength(1);
    const file = files[0]!;
    expect(file).toMatch(new RegExp(`^abathur_\\d{4}-\\d{2}-\\d{2}_\\d{2}-\\d{2}-\\d{2}-manual[a-z0-9]{6}\\.db\\.gz$`));
    const manifest = manifestOf(t.backupsDir, file);
    expect(signatureProblem(manifest, [h.workerKey.publicKey])).toBeUndefined();
    expect((result as unknown as { extra: { backup: { file: string } } }).extra?.backup?.file ?? file).toBe(file);

    // the bytes are what the manifest says, and they are a sound database taken at one instant
    const raw = gunzipSync(readFileSync(join(t.backupsDir, file)));
    expect(raw.length).toBe(manifest.raw.bytes);
    const copy = join(h.root, `${t.envName}-restored.db`);
    writeFileSync(copy, raw);
    const db = new Database(copy, { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(db.pragma('foreign_key_check')).toEqual([]);
    const tasks = db.prepare('SELECT count(*) FROM tasks').pluck().get() as number;
    // every audit row of the copy belongs to a task of the copy: no write was half in it
    expect(
      db
        .prepare('SELECT count(*) FROM audit WHERE task_id IS NOT NULL AND task_id NOT IN (SELECT id FROM tasks)')
        .pluck()
        .get(),
    ).toBe(0);
    db.close();
    expect(manifest.rows.tasks).toBe(tasks);
    expect(tasks).toBeGreaterThanOrEqual(before.tasks);
    expect(manifest.counts.indexes).toBeGreaterThanOrEqual(33);
    // nothing of the work directory is left
    expect(readdirSync(join(t.backupsDir, '.work'))).toEqual([]);
  });

  it('retention deletes backups past 30 days but never the newest verified one', async () => {
    const t = await sqliteTarget(h, { seedBytes: 2_000_000 });
    const run = async () =>
      (await (await startRunbook(h, 'sqlite-backup', { environment: t.envName })).result()) as RunbookResult;
    await run();
    const [fresh] = readdirSync(t.backupsDir).filter((f) => f.endsWith('.db.gz'));
    // two old backups: copies of the fresh one, renamed and re-dated, signed by this worker
    const now = Date.now();
    const old = (days: number) => {
      const at = new Date(now - days * 86_400_000);
      const name = `abathur_${at.toISOString().slice(0, 19).replace('T', '_').replaceAll(':', '-')}-old${days}`;
      return { name, file: `${name}.db.gz`, at };
    };
    for (const o of [old(45), old(40), old(10)]) {
      writeFileSync(join(t.backupsDir, o.file), readFileSync(join(t.backupsDir, fresh!)));
      const m = manifestOf(t.backupsDir, fresh!);
      await writeManifest(
        t.backupsDir,
        { ...m, name: o.name, file: o.file, createdAt: o.at.toISOString() },
        h.workerKey,
      );
    }
    const second = await run();
    expect(second.outcome).toBe('succeeded');
    const left = readdirSync(t.backupsDir)
      .filter((f) => f.endsWith('.db.gz'))
      .sort();
    expect(left).toHaveLength(3);
    expect(left).toContain(fresh);
    expect(left).toContain(old(10).file);
    expect(left.some((f) => f.includes('old45') || f.includes('old40'))).toBe(false);

    // only old backups, and the newest verified one stays whatever its age
    for (const f of readdirSync(t.backupsDir).filter((f) => f.endsWith('.db.gz') && !f.includes('old10'))) {
      unlinkSync(join(t.backupsDir, f));
      unlinkSync(manifestPath(t.backupsDir, f));
    }
    const o = old(50);
    writeFileSync(join(t.backupsDir, o.file), readFileSync(join(t.backupsDir, old(10).file)));
    await writeManifest(
      t.backupsDir,
      { ...manifestOf(t.backupsDir, old(10).file), name: o.name, file: o.file, createdAt: o.at.toISOString() },
      h.workerKey,
    );
    const listed = await listBackups(t.backupsDir, 'abathur', [h.workerKey.publicKey]);
    expect(listed.map((b) => b.file)).toEqual([old(10).file, o.file]);

    // two backups in the same second: the name cannot order them ("older" sorts after "newer"), the manifest's
    // milliseconds do
    const stamp = `abathur_${o.at.toISOString().slice(0, 19).replace('T', '_').replaceAll(':', '-')}`;
    for (const [tag, ms] of [
      ['newer', 900],
      ['older', 100],
    ] as const) {
      const file = `${stamp}-${tag}.db.gz`;
      writeFileSync(join(t.backupsDir, file), readFileSync(join(t.backupsDir, o.file)));
      const at = new Date(Math.floor(o.at.getTime() / 1000) * 1000 + ms).toISOString();
      await writeManifest(
        t.backupsDir,
        { ...manifestOf(t.backupsDir, o.file), name: file.slice(0, -6), file, createdAt: at },
        h.workerKey,
      );
    }
    const sameSecond = (await listBackups(t.backupsDir, 'abathur', [h.workerKey.publicKey])).map((b) => b.file);
    expect(sameSecond.filter((f) => f.endsWith('-newer.db.gz') || f.endsWith('-older.db.gz'))).toEqual([
      `${stamp}-newer.db.gz`,
      `${stamp}-older.db.gz`,
    ]);
  });

  it('bad input is InvalidInput naming the field, and nothing is written', async () => {
    const t = await sqliteTarget(h, { seedBytes: 1_000_000, start: false });
    const handle = await startRunbook(h, 'sqlite-backup', { environment: t.envName, tag: '../x' });
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause.type).toBe(ErrorType.InvalidInput);
    expect(cause.message).toContain('tag');
    expect(readdirSync(join(t.backupsDir, '..')).includes('backups')).toBe(false);
  });
});
