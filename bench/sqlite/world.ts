/**
 * What section 4 runs against: the seeded demo database, one environment per backup configuration (the demo
 * target of src/demo/sqlite-environment.ts, pointed at that database), and the real backup activities.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { createSqliteBackupActivities } from '../../src/activities/sqlite/backup.js';
import { generateKeyPair } from '../../src/activities/keys.js';
import { loadSqliteTarget } from '../../src/activities/sqlite/target.js';
import { writeSqliteEnvironment } from '../../src/demo/sqlite-environment.js';
import { backupNameFor } from '../../src/workflows/sqlite/names.js';
import type { SqliteTargetConfig } from '../../src/shared/schemas.js';
import type { BenchDatabase } from './database.js';

export type BackupMethod = SqliteTargetConfig['backups']['method'];

export interface BackupConfig {
  method: BackupMethod;
  compression: number;
}

export interface SqliteWorld {
  root: string;
  db: BenchDatabase;
  environmentsDir: string;
  activities: ReturnType<typeof createSqliteBackupActivities>;
  log: (message: string) => void;
}

/** An environment whose `app` target is the database at `dbPath` with this backup configuration. */
export interface BenchTarget {
  environment: string;
  target: 'app';
  backupsDir: string;
  config: SqliteTargetConfig;
}

let counter = 0;

export function openSqliteWorld(root: string, db: BenchDatabase, log: (message: string) => void): SqliteWorld {
  const environmentsDir = join(root, 'environments');
  mkdirSync(environmentsDir, { recursive: true });
  const activities = createSqliteBackupActivities({
    environmentsDir,
    log: pino({ level: 'warn' }),
    signingKey: generateKeyPair(),
  });
  return { root, db, environmentsDir, activities, log };
}

/**
 * Writes an environment with `backups` as given whose database is the seeded one, or with `appDir` the demo
 * application's own (`<appDir>/abathur.db`, its service on `port` writing every `writeIntervalMs`).
 */
export async function benchTarget(
  world: SqliteWorld,
  backups: BackupConfig,
  options: { appDir?: string; port?: number; writeIntervalMs?: number } = {},
): Promise<BenchTarget> {
  const environment = `sqbench-${counter++}`;
  const backupsDir = join(world.root, 'backups', environment);
  const dataDir = options.appDir ?? join(world.root, 'env-data', environment);
  writeSqliteEnvironment({
    environmentsDir: world.environmentsDir,
    name: environment,
    dataDir,
    backupsDir,
    port: options.port ?? 1,
    writeIntervalMs: options.writeIntervalMs,
    sqlite: {
      ...(options.appDir === undefined ? { path: world.db.path } : {}),
      backups: { dir: backupsDir, retention: '30d', ...backups },
    },
  });
  const t = await loadSqliteTarget(world.environmentsDir, { environment, target: 'app' });
  return { environment, target: 'app', backupsDir, config: t.config };
}

/** A backup name as the runbook makes them (`<prefix>_<UTC time>-<tag>`). */
export const benchBackupName = (tag: string): string =>
  backupNameFor('abathur', new Date(), tag.replace(/[^a-z0-9]/g, ''), String(counter++));

/** Flushes dirty pages (never drops the page cache) so that one run's writeback does not fall into the next. */
export function settle(): void {
  execFileSync('sync');
}

export const removeDir = (dir: string): void => rmSync(dir, { recursive: true, force: true });
