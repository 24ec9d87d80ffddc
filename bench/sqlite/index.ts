/**
 * Section 4 of `npm run bench`: backup + verify of the demo SQLite database (1 GB; BENCH_SMOKE=1: 30 MB) — each
 * copy method alone against `cp` of the same file, each end to end (copy → gzip → verify), the event-loop pauses
 * of the in-process ones, where zlib runs (main thread or worker thread), and the activities' pipeline and the
 * stepped backup API under concurrent writes. `runSqliteBench()` returns the section's Markdown (BENCHMARKS.md's
 * sqlite block) and the backup configuration it chose. Knobs: settings.ts. database.ts seeds (or reuses) the
 * database, for the restore sections to come as well.
 */
import { statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipFile, gzipFile } from '../../src/activities/sqlite/backup-files.js';
import { zipStream } from '../../src/activities/sqlite/thread.mjs';
import { median } from '../engine/format.js';
import { isWalFile, warmUp, type BenchDatabase } from './database.js';
import { decide, schemaDefault, type Decision } from './decision.js';
import { mergePauses, timed, type Pauses } from './probe.js';
import { sqliteReport, type CopyStats } from './report.js';
import { activitiesRun, COPY_METHODS, inScratch, methodRun, uncompressedRun, zlibRun, type PhasedRun } from './runs.js';
import { ACTIVITIES_RUNS, COPY_RUNS, GZIP_LEVELS, IDLE_PROBE_MS } from './settings.js';
import { sqliteSection, type SqliteSectionOptions } from './section.js';
import { underWrites, type WritesResult } from './writes.js';
import { benchTarget, openSqliteWorld, settle, type BackupConfig, type SqliteWorld } from './world.js';

export type SqliteBenchOptions = SqliteSectionOptions;

export interface SqliteBench {
  markdown: string;
  db: BenchDatabase;
  copies: CopyStats[];
  runs: PhasedRun[];
  zlib: PhasedRun[];
  writes: WritesResult;
  decision: Decision;
}

/**
 * Runs section 4. Stops everything it started and removes its files (after a failure too, unless
 * KEEP_BENCH_FILES=1); the seeded database stays when it lives in `seedDir`.
 */
export function runSqliteBench(options: SqliteBenchOptions): Promise<SqliteBench> {
  return sqliteSection('sqlite', options, async ({ log, resources, root, db, date, started, loadAtStart }) => {
    const world = openSqliteWorld(root, db, log);
    log(`the pause probe on the idle process for ${IDLE_PROBE_MS / 1000} s`);
    const idle = (await timed(() => sleep(IDLE_PROBE_MS))).pause;
    const copies = await copiesAlone(world);
    const zlib = await zlibPlacement(world);
    const runs = await endToEnd(world);
    const decision = decide(runs, copies, schemaDefault());
    log(`chosen: ${decision.chosen.method}, gzip -${decision.chosen.compression}; under concurrent writes`);
    const quietCopyMs = Object.fromEntries(copies.map((c) => [c.method.id, c.ms]));
    const writes = await underWrites(world, resources, decision.chosen, quietCopyMs);
    const markdown = sqliteReport({
      date,
      db,
      root,
      idle,
      copies,
      zlib,
      runs,
      writes,
      decision,
      load: { start: loadAtStart, end: os.loadavg() },
      totalMs: Date.now() - started,
    });
    return { markdown, db, copies, runs, zlib, writes, decision };
  });
}

/** Reads the whole database (warm cache for what follows) and flushes dirty pages. */
async function warm(world: SqliteWorld): Promise<void> {
  await warmUp(world.db.path);
  settle();
}

/** Each copy method alone, COPY_RUNS times, each run right after a full read of the database (warm cache). */
async function copiesAlone(world: SqliteWorld): Promise<CopyStats[]> {
  const out: CopyStats[] = [];
  const dir = join(world.root, 'copy');
  const copy = join(dir, 'copy.db');
  for (const method of COPY_METHODS) {
    world.log(`copy alone: ${method.label}`);
    const samples: Array<{ ms: number; pause: Pauses; bytes: number; wal: boolean }> = [];
    for (let i = 0; i < COPY_RUNS; i++) {
      const r = await inScratch(dir, async () => {
        await warm(world);
        const t = await timed(() => method.copy(world.db.path, copy));
        return { ms: t.ms, pause: t.pause, bytes: statSync(copy).size, wal: isWalFile(copy) };
      });
      settle();
      samples.push(r);
    }
    out.push({
      method,
      ms: median(samples.map((s) => s.ms)),
      pause: mergePauses(samples.map((s) => s.pause)),
      bytes: samples[0]!.bytes,
      keepsWal: samples.every((s) => s.wal === isWalFile(world.db.path)),
      samples: samples.map((s) => s.ms),
    });
  }
  return out;
}

/** gzip and gunzip of the database (the first gzip level), on this thread as the code before did, and on a worker thread as gzipFile and gunzipFile do. */
async function zlibPlacement(world: SqliteWorld): Promise<PhasedRun[]> {
  const level = GZIP_LEVELS[0];
  const dir = join(world.root, 'zlib');
  const placements = [
    {
      id: 'zlib-main',
      label: 'on the main thread (streams, as `gzipFile` / `gunzipFile` did before)',
      zip: {
        gzip: (src: string, dest: string, l: number) => zipStream({ src, dest, level: l }, false),
        gunzip: (src: string, dest: string) => zipStream({ src, dest }, true),
      },
    },
    {
      id: 'zlib-thread',
      label: 'on a worker thread (`gzipFile` / `gunzipFile` now)',
      zip: { gzip: gzipFile, gunzip: gunzipFile },
    },
  ];
  const out: PhasedRun[] = [];
  for (const p of placements) {
    world.log(`gzip -${level} and gunzip ${p.label}`);
    await warm(world);
    out.push(await zlibRun(p, world.db.path, dir, level, p.zip));
    settle();
  }
  return out;
}

/**
 * Copy → gzip → verify: the activities' pipeline per configuration, ACTIVITIES_RUNS rounds interleaved, then each
 * other copy method once and the copy with the checks and no gzip.
 */
async function endToEnd(world: SqliteWorld): Promise<PhasedRun[]> {
  const runs: PhasedRun[] = [];
  const measure = async (what: string, run: () => Promise<PhasedRun>) => {
    world.log(`end to end: ${what}`);
    await warm(world);
    runs.push(await run());
    settle();
  };
  const configs: BackupConfig[] = [
    ...GZIP_LEVELS.map((compression) => ({ method: 'backup-api' as const, compression })),
    { method: 'vacuum-into', compression: GZIP_LEVELS[0] },
  ];
  const targets = await Promise.all(configs.map((c) => benchTarget(world, c)));
  for (let round = 1; round <= ACTIVITIES_RUNS; round++)
    for (const t of targets) {
      const { method, compression } = t.config.backups;
      const id = `activities-${method}-${compression}`;
      const label = `activities: \`${method}\`, gzip -${compression}${ACTIVITIES_RUNS > 1 ? ` (run ${round})` : ''}`;
      await measure(`${id} run ${round}`, () => activitiesRun(world, t, { id, label }));
    }
  const level1 = targets[0]!;
  const others = COPY_METHODS.filter((m) => m.id !== 'backup-api' && m.id !== 'vacuum-into');
  const dir = join(world.root, 'e2e');
  for (const method of others)
    await measure(method.id, () => methodRun(world, method, level1, dir, level1.config.backups));
  await measure('no gzip', () => uncompressedRun(world, level1, dir));
  return runs;
}

/** What a smoke run (BENCH_SMOKE=1) must have shown: every alternative ran, and the backup under writes is sound. */
export function sqliteSmokeProblems(bench: SqliteBench): string[] {
  const problems: string[] = [];
  for (const c of bench.copies) if (!(c.ms > 0)) problems.push(`copy alone ${c.method.id}: no time`);
  for (const r of bench.runs)
    if (r.copy && !r.copy.completed) problems.push(`end to end ${r.id}: the copy did not complete`);
  const w = bench.writes;
  if (w.writesDuringBackup <= 0) problems.push('under writes: the service committed nothing during the backup');
  if (w.writeErrors > 0) problems.push(`under writes: ${w.writeErrors} failed writes`);
  for (const s of w.stepped)
    if (s.completed && s.integrity !== 'ok')
      problems.push(`under writes: stepped ${s.pages}: integrity ${s.integrity}`);
  return problems;
}
