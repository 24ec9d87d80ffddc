/**
 * What every SQLite section (4: backup, 5: restore RTO) runs in: its log, Resources of its own nested in the
 * caller's, a temp dir, the seeded database (database.ts), its date, start time and load average.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { runDate } from '../support/machine.js';
import type { Resources } from '../support/resources.js';
import { benchSqliteDatabase, seedDirFor, type BenchDatabase } from './database.js';

export interface SqliteSectionOptions {
  /** what the caller holds; the section's own are nested in it, and stopped when the section ends */
  resources: Resources;
  log?: (message: string) => void;
  /** where the seeded database lives (seedDirFor): a run with more SQLite sections passes one folder to all */
  seedDir?: string;
}

export interface SqliteSection {
  log: (message: string) => void;
  resources: Resources;
  /** the section's temp dir */
  root: string;
  db: BenchDatabase;
  date: string;
  /** Date.now() at the start */
  started: number;
  loadAtStart: number[];
}

/**
 * Runs `body` in a section named `name` (its log prefix, its temp dir `durable-runbooks-<name>-bench-*`). Stops
 * everything the section started and removes its files (after a failure too, unless KEEP_BENCH_FILES=1); the seeded
 * database stays when it lives in `seedDir`.
 */
export async function sqliteSection<T>(
  name: string,
  options: SqliteSectionOptions,
  body: (section: SqliteSection) => Promise<T>,
): Promise<T> {
  const log = options.log ?? ((message: string) => void process.stderr.write(`[bench:${name}] ${message}\n`));
  const resources = options.resources.nested();
  const date = runDate();
  const started = Date.now();
  const loadAtStart = os.loadavg();
  const root = mkdtempSync(join(os.tmpdir(), `durable-runbooks-${name}-bench-`));
  let ok = false;
  try {
    const db = await benchSqliteDatabase(options.seedDir ?? seedDirFor(root), { log });
    log(`${db.reused ? 'reusing' : 'seeded'} ${db.path} (${(db.bytes / 1e6).toFixed(0)} MB)`);
    const value = await body({ log, resources, root, db, date, started, loadAtStart });
    ok = true;
    return value;
  } finally {
    await resources.stop();
    // its copies and backups are gigabytes: kept after a failure only when asked
    if (ok || process.env.KEEP_BENCH_FILES !== '1') rmSync(root, { recursive: true, force: true });
    else log(`files kept in ${root}`);
  }
}
