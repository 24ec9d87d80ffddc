/**
 * The copies and the end-to-end backups section 4 times. Each end-to-end run is a list of phases run one after
 * the other inside one probe (wall time per phase, the longest event-loop pause of the whole).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { gzipFile } from '../../src/activities/sqlite/backup-files.js';
import { verifyCompressed, type CompressDone } from '../../src/activities/sqlite/backup.js';
import { inThread } from '../../src/activities/sqlite/thread.js';
import { validateDatabase } from '../../src/activities/sqlite/validation.js';
import { pausesIn, timed, type Pauses } from './probe.js';
import { STEP_PAGES } from './settings.js';
import { benchBackupName, type BackupConfig, type BenchTarget, type SqliteWorld } from './world.js';

const run = promisify(execFile);

export interface CopyOutcome {
  /** false: a stepped copy given up at its deadline */
  completed: boolean;
  steps?: number;
  restarts?: number;
}

export interface CopyMethod {
  id: string;
  label: string;
  /** runs in the bench process (its event-loop pause counts); otherwise a child process */
  inProcess: boolean;
  /** a consistent snapshot while another connection writes */
  consistent: boolean;
  copy(src: string, dest: string, deadline?: number): Promise<CopyOutcome>;
}

class GaveUp extends Error {}

/** SQLite's backup API on this thread, `pages` pages per step (better-sqlite3 yields to the event loop between steps). */
async function steppedCopy(src: string, dest: string, pages: number, deadline?: number): Promise<CopyOutcome> {
  const db = new Database(src, { readonly: true, fileMustExist: true });
  let steps = 0;
  let restarts = 0;
  let last = Infinity;
  try {
    await db.backup(dest, {
      progress: ({ remainingPages }) => {
        steps++;
        // each step copies `pages` more; a restart (another connection wrote) starts the count again
        if (remainingPages >= last) restarts++;
        last = remainingPages;
        if (deadline !== undefined && Date.now() > deadline) throw new GaveUp();
        return pages;
      },
    });
    return { completed: true, steps, restarts };
  } catch (err) {
    if (!(err instanceof GaveUp)) throw err;
    rmSync(dest, { force: true });
    return { completed: false, steps, restarts };
  } finally {
    db.close();
  }
}

async function threadCopy(src: string, dest: string, method: 'backup-api' | 'vacuum-into'): Promise<CopyOutcome> {
  await inThread('backup', { src, dest, method });
  return { completed: true, steps: method === 'backup-api' ? 1 : undefined };
}

export const CP: CopyMethod = {
  id: 'cp',
  label: '`cp` of the database file (baseline)',
  inProcess: false,
  consistent: false,
  copy: async (src, dest) => {
    await run('cp', ['--', src, dest]);
    return { completed: true };
  },
};

/** gzip then gunzip of `src` in `dir` by `zip` (the worker-thread functions, or the stream on this thread), timed. */
export function zlibRun(
  head: Pick<PhasedRun, 'id' | 'label'>,
  src: string,
  dir: string,
  level: number,
  zip: {
    gzip: (src: string, dest: string, level: number) => Promise<unknown>;
    gunzip: (src: string, dest: string) => Promise<unknown>;
  },
): Promise<PhasedRun> {
  const gz = join(dir, 'file.gz');
  return inScratch(dir, () =>
    phased({ ...head, inProcess: true }, [
      [
        'compress',
        () => zip.gzip(src, gz, level).then(() => ({ rawBytes: statSync(src).size, gzBytes: statSync(gz).size })),
      ],
      ['decompress', async () => void (await zip.gunzip(gz, join(dir, 'file')))],
    ]),
  );
}

export const THREAD_BACKUP_API: CopyMethod = {
  id: 'backup-api',
  label: 'backup API, one step, on a worker thread (the activities: `backup-api`)',
  inProcess: true,
  consistent: true,
  copy: (src, dest) => threadCopy(src, dest, 'backup-api'),
};

export const steppedMethod = (pages: number): CopyMethod => ({
  id: `stepped-${pages}`,
  label: `backup API, ${pages} pages per step, on the main thread${pages === 100 ? " (better-sqlite3's default)" : ''}`,
  inProcess: true,
  consistent: true,
  copy: (src, dest, deadline) => steppedCopy(src, dest, pages, deadline),
});

export const COPY_METHODS: CopyMethod[] = [
  CP,
  THREAD_BACKUP_API,
  ...STEP_PAGES.map(steppedMethod),
  {
    id: 'vacuum-into',
    label: '`VACUUM INTO`, on a worker thread (the activities: `vacuum-into`)',
    inProcess: true,
    consistent: true,
    copy: (src, dest) => threadCopy(src, dest, 'vacuum-into'),
  },
  {
    id: 'sqlite3',
    label: '`sqlite3 <db> ".backup <dest>"` (Debian sqlite3 command)',
    inProcess: false,
    consistent: true,
    copy: async (src, dest) => {
      if (dest.includes("'")) throw new Error(`${dest}: a quote in the path`);
      await run('sqlite3', ['-readonly', src, `.backup '${dest}'`]);
      return { completed: true };
    },
  },
];

export interface PhasedRun {
  id: string;
  label: string;
  inProcess: boolean;
  /** wall time and longest event-loop pause of each phase, in order */
  phases: Array<{ name: string; ms: number; pause: Pauses }>;
  totalMs: number;
  pause: Pauses;
  /** bytes of the copy (the database as backed up) and of its gzip */
  rawBytes?: number;
  gzBytes?: number;
  copy?: CopyOutcome;
  /** the core tables' rows counted by the verify */
  rows?: Record<string, number | null>;
  /** the activities' runs: the configuration they ran with */
  config?: BackupConfig;
}

/** Called at each phase's start and end, outside its timing (the run's time still includes it). */
export type PhaseHook = (phase: string, edge: 'start' | 'end') => Promise<void>;

/** Runs `phases` in order inside one probe; a phase may return facts about the run to merge into it. */
export async function phased(
  head: Pick<PhasedRun, 'id' | 'label' | 'inProcess'>,
  phases: Array<[string, () => Promise<Partial<PhasedRun> | void>]>,
  hook?: PhaseHook,
): Promise<PhasedRun> {
  const facts: Partial<PhasedRun> = {};
  const windows: Array<{ name: string; from: number; to: number }> = [];
  const r = await timed(async () => {
    for (const [name, work] of phases) {
      await hook?.(name, 'start');
      const from = performance.now();
      Object.assign(facts, (await work()) ?? {});
      windows.push({ name, from, to: performance.now() });
      await hook?.(name, 'end');
    }
  });
  return {
    ...head,
    ...facts,
    phases: windows.map((w) => ({ name: w.name, ms: w.to - w.from, pause: pausesIn(r.pauses, w.from, w.to) })),
    totalMs: r.ms,
    pause: r.pause,
  };
}

/** The backup as the runbook's activities take it: checkpoint → copy → compress → verify → publish (backupsDir emptied after). */
export async function activitiesRun(
  world: SqliteWorld,
  t: BenchTarget,
  head: { id: string; label: string },
  hook?: PhaseHook,
): Promise<PhasedRun> {
  const a = world.activities;
  const ref = { environment: t.environment, target: t.target, name: benchBackupName(head.id) };
  const { method, compression } = t.config.backups;
  try {
    const run = await phased(
      { ...head, inProcess: true },
      [
        ['checkpoint', async () => void (await a.checkpointDatabase({ ...ref, mode: 'PASSIVE' }))],
        ['copy', async () => ({ rawBytes: (await a.copyDatabase(ref)).bytes, copy: { completed: true, steps: 1 } })],
        ['compress', async () => ({ gzBytes: (await a.compressBackup(ref)).gzBytes })],
        ['verify', async () => ({ rows: (await a.verifyBackup(ref)).rows })],
        ['publish', async () => void (await a.publishBackup({ ...ref, workflowId: 'bench', runId: ref.name }))],
      ],
      hook,
    );
    return { ...run, config: { method, compression } };
  } finally {
    rmSync(t.backupsDir, { recursive: true, force: true });
  }
}

/** Runs `work` with `dir` made for it, and removed after. */
export async function inScratch<T>(dir: string, work: () => Promise<T>): Promise<T> {
  mkdirSync(dir, { recursive: true });
  try {
    return await work();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A copy by `method`, then the activities' compress and verify of that copy (gzipFile, verifyCompressed), in `dir`. */
export function methodRun(
  world: SqliteWorld,
  method: CopyMethod,
  t: BenchTarget,
  dir: string,
  backups: BackupConfig,
): Promise<PhasedRun> {
  const copy = join(dir, 'copy.db');
  const gz = join(dir, 'backup.db.gz');
  let compressed: CompressDone | undefined;
  return inScratch(dir, () =>
    phased({ id: method.id, label: method.label, inProcess: method.inProcess }, [
      ['copy', async () => ({ copy: await method.copy(world.db.path, copy), rawBytes: statSync(copy).size })],
      [
        'compress',
        async () => {
          compressed = await gzipFile(copy, gz, backups.compression);
          return { gzBytes: compressed.gzBytes };
        },
      ],
      [
        'verify',
        async () => ({
          rows: (await verifyCompressed(gz, join(dir, 'verify.db'), compressed!, t.config, method.id)).rows,
        }),
      ],
    ]),
  );
}

/** The copy (one step on a worker thread) and the verify's checks on the copy itself: no compression. */
export function uncompressedRun(world: SqliteWorld, t: BenchTarget, dir: string): Promise<PhasedRun> {
  const copy = join(dir, 'copy.db');
  const head = { id: 'no-gzip', label: 'backup API copy + the same checks on the copy, no gzip', inProcess: true };
  return inScratch(dir, () =>
    phased(head, [
      [
        'copy',
        async () => ({ copy: await THREAD_BACKUP_API.copy(world.db.path, copy), rawBytes: statSync(copy).size }),
      ],
      [
        'verify',
        async () => {
          const v = await validateDatabase(copy, t.config, { integrity: 'full', sql: false });
          if (v.integrity !== 'ok') throw new Error(`integrity check of the copy: ${v.integrity}`);
          return { rows: v.rows };
        },
      ],
    ]),
  );
}
