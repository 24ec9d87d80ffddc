/**
 * The demo database every SQLite section measures (backup now; restore RTO beside it later): one file seeded by
 * seedSqliteDatabase, reused while it is the file that was seeded. Sections read it or copy it; none writes to it.
 */
import {
  closeSync,
  createReadStream,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { seedSqliteDatabase } from '../../src/demo/sqlite-app/seed.js';
import { SQLITE_BENCH_BYTES } from './settings.js';

export interface BenchDatabase {
  /** the database file (WAL mode, checkpointed, no -wal left) */
  path: string;
  bytes: number;
  rows: Record<string, number>;
  /** how long the seed took (when it was reused: the seed that made it) */
  seedMs: number;
  reused: boolean;
}

/** the folder of a run's temp dir that holds the seeded database */
export const SEED_FOLDER = 'sqlite-seed';

/** Where the seeded database lives: SQLITE_BENCH_SEED_DIR (kept across runs), else SEED_FOLDER of the run's `root`. */
export const seedDirFor = (root: string): string => process.env.SQLITE_BENCH_SEED_DIR || join(root, SEED_FOLDER);

interface SeedRecord {
  targetBytes: number;
  bytes: number;
  mtimeMs: number;
  rows: Record<string, number>;
  seedMs: number;
}

/**
 * The demo database of `targetBytes` in `dir` (`abathur.db`, with `seed.json` beside it): seeded when absent, reused
 * when `seed.json` names this target size and the file's size and mtime are still those it recorded (a file that
 * changed is seeded again).
 */
export async function benchSqliteDatabase(
  dir: string,
  options: { targetBytes?: number; log?: (message: string) => void } = {},
): Promise<BenchDatabase> {
  const targetBytes = options.targetBytes ?? SQLITE_BENCH_BYTES;
  const path = join(dir, 'abathur.db');
  const recordFile = join(dir, 'seed.json');
  const record = existsSync(recordFile) ? (JSON.parse(readFileSync(recordFile, 'utf8')) as SeedRecord) : undefined;
  const st = existsSync(path) ? statSync(path) : undefined;
  if (record && st && record.targetBytes === targetBytes && record.bytes === st.size && record.mtimeMs === st.mtimeMs)
    return { path, bytes: st.size, rows: record.rows, seedMs: record.seedMs, reused: true };
  for (const f of [path, `${path}-wal`, `${path}-shm`, recordFile]) rmSync(f, { force: true });
  mkdirSync(dir, { recursive: true });
  options.log?.(`seeding a ${(targetBytes / 1e6).toFixed(0)} MB demo database in ${dir}`);
  const started = performance.now();
  const seeded = await seedSqliteDatabase(path, { targetBytes });
  const seedMs = performance.now() - started;
  const after = statSync(path);
  const fresh: SeedRecord = { targetBytes, bytes: after.size, mtimeMs: after.mtimeMs, rows: seeded.rows, seedMs };
  writeFileSync(recordFile, JSON.stringify(fresh, null, 2));
  return { path, bytes: after.size, rows: seeded.rows, seedMs, reused: false };
}

/** Reads the whole file once (into the page cache; the bytes go nowhere): every alternative starts warm. */
export async function warmUp(path: string): Promise<void> {
  await pipeline(
    createReadStream(path, { highWaterMark: 1 << 20 }),
    new Writable({ write: (_chunk, _enc, done) => done() }),
  );
}

/** Whether the database file's header marks it a WAL database (file format bytes 18-19 = 2), as a restore of it would open. */
export function isWalFile(path: string): boolean {
  const header = Buffer.alloc(20);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, header, 0, 20, 0);
  } finally {
    closeSync(fd);
  }
  return header[18] === 2 && header[19] === 2;
}
