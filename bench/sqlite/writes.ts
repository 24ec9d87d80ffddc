/**
 * Backups under concurrent writes: the demo service (src/demo/sqlite-app/service.mjs) writes one transaction every
 * WRITE_INTERVAL_MS to a copy of the seeded database while the activities' pipeline backs it up, then while the
 * backup API in steps on the main thread tries to (it restarts whenever another connection has written).
 */
import { spawn } from 'node:child_process';
import { closeSync, copyFileSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { validateDatabase } from '../../src/activities/sqlite/validation.js';
import { sqliteAppCommand, sqliteAppFiles } from '../../src/demo/sqlite-environment.js';
import { freePort } from '../../src/dev/ports.js';
import { stopChild, type Resources } from '../support/resources.js';
import { timed, type Pauses } from './probe.js';
import { activitiesRun, steppedMethod, type CopyOutcome, type PhasedRun } from './runs.js';
import {
  STEP_PAGES,
  STEPPED_BUDGET_FACTOR,
  STEPPED_BUDGET_MIN_MS,
  WRITE_INTERVAL_MS,
  WRITES_SETTLE_MS,
} from './settings.js';
import { benchTarget, settle, type BackupConfig, type SqliteWorld } from './world.js';

interface ServiceStats {
  writes: number;
  writeErrors: number;
  tasks: number;
  integrity: { status: string };
}

export interface SteppedUnderWrites extends CopyOutcome {
  pages: number;
  ms: number;
  pause: Pauses;
  budgetMs: number;
  writes: number;
  /** integrity_check of the copy, when it completed */
  integrity?: string;
}

export interface WritesResult {
  intervalMs: number;
  pipeline: PhasedRun;
  /** writes the service committed during the copy and during the whole backup */
  writesDuringCopy: number;
  writesDuringBackup: number;
  /** tasks in the live database when the copy started and ended, and in the backup */
  tasks: { copyStart: number; copyEnd: number; backup: number | null };
  stepped: SteppedUnderWrites[];
  /** the service's failed writes over the whole section */
  writeErrors: number;
  /** the service's writes per second while nothing else ran */
  idleWritesPerSecond: number;
}

/** Runs the section on a copy of the seeded database; `quietCopyMs` is each stepped method's copy time without writes. */
export async function underWrites(
  world: SqliteWorld,
  resources: Resources,
  backups: BackupConfig,
  quietCopyMs: Record<string, number>,
): Promise<WritesResult> {
  const appDir = join(world.root, 'writes', 'app');
  mkdirSync(appDir, { recursive: true });
  const app = sqliteAppFiles(appDir);
  copyFileSync(world.db.path, app.db);
  const port = await freePort();
  const t = await benchTarget(world, backups, { appDir, port, writeIntervalMs: WRITE_INTERVAL_MS });
  const [command, ...args] = sqliteAppCommand(app, port, WRITE_INTERVAL_MS);
  const out = openSync(app.logFile, 'a');
  const service = spawn(command!, args, { stdio: ['ignore', out, out] });
  closeSync(out);
  resources.children.push(service);
  const stats = async (): Promise<ServiceStats> => (await fetch(`http://127.0.0.1:${port}/stats`)).json() as never;
  try {
    await untilIntegrityOk(stats);
    const idle0 = await stats();
    const idleStarted = performance.now();
    await sleep(WRITES_SETTLE_MS);
    const idle1 = await stats();
    const idleWritesPerSecond = ((idle1.writes - idle0.writes) * 1000) / (performance.now() - idleStarted);

    world.log(`under writes: the activities' pipeline (${backups.method}, gzip -${backups.compression})`);
    const at: Record<string, ServiceStats> = {};
    const pipeline = await activitiesRun(
      world,
      t,
      { id: 'under-writes', label: `activities (${backups.method}, gzip -${backups.compression}) under writes` },
      async (phase, edge) => {
        if (phase === 'copy' || (phase === 'checkpoint' && edge === 'start') || phase === 'publish')
          at[`${phase}:${edge}`] = await stats();
      },
    );
    const copyStart = at['copy:start']!;
    const copyEnd = at['copy:end']!;

    const stepped: SteppedUnderWrites[] = [];
    for (const pages of STEP_PAGES) {
      const method = steppedMethod(pages);
      const budgetMs = Math.max(STEPPED_BUDGET_MIN_MS, STEPPED_BUDGET_FACTOR * (quietCopyMs[method.id] ?? 0));
      world.log(`under writes: ${method.label} (gives up after ${(budgetMs / 1000).toFixed(0)} s)`);
      const dest = join(world.root, 'writes', `${method.id}.db`);
      const before = await stats();
      const r = await timed(() => method.copy(app.db, dest, Date.now() + budgetMs));
      const after = await stats();
      let integrity: string | undefined;
      if (r.value.completed) integrity = (await validateDatabase(dest, t.config, { sql: false })).integrity;
      for (const f of [dest, `${dest}-wal`, `${dest}-shm`]) rmSync(f, { force: true });
      stepped.push({
        pages,
        ...r.value,
        ms: r.ms,
        pause: r.pause,
        budgetMs,
        writes: after.writes - before.writes,
        integrity,
      });
      settle();
    }
    const last = await stats();
    return {
      intervalMs: WRITE_INTERVAL_MS,
      pipeline,
      writesDuringCopy: copyEnd.writes - copyStart.writes,
      writesDuringBackup: at['publish:end']!.writes - at['checkpoint:start']!.writes,
      tasks: { copyStart: copyStart.tasks, copyEnd: copyEnd.tasks, backup: pipeline.rows?.tasks ?? null },
      stepped,
      writeErrors: last.writeErrors,
      idleWritesPerSecond,
    };
  } finally {
    await stopChild(service);
    rmSync(join(world.root, 'writes'), { recursive: true, force: true });
  }
}

/** The service answers and its startup quick_check has passed. */
export async function untilIntegrityOk(stats: () => Promise<ServiceStats>): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const s = await stats().catch(() => undefined);
    if (s?.integrity.status === 'ok') return;
    if (s && s.integrity.status !== 'checking' && s.integrity.status !== 'pending')
      throw new Error(`demo service: startup check ${s.integrity.status}`);
    if (Date.now() > deadline) throw new Error('demo service: not ready after 120 s');
    await sleep(100);
  }
}
