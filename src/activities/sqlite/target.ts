import { readFile, stat, statfs } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve, sep } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { flagStoreFromConfig, serviceFromConfig } from '../adapters/index.js';
import type { CommandRunner, FlagStore, ServiceAdapter } from '../adapters/types.js';
import { loadTarget, requireSection, withEnvironmentErrors, type LoadedTarget } from '../environment.js';
import { ErrorType } from '../../shared/constants.js';
import { formatBytes } from '../../shared/bytes.js';
import { PUBLIC_KEY_PATTERN } from '../../shared/decisions.js';
import type { SqliteTargetConfig } from '../../shared/schemas.js';
import { listBackups, type ListedBackup } from './backup-files.js';

export interface TargetRef {
  environment: string;
  target: string;
}

/** A `sqlite` target with every path resolved and checked, and its adapters built. */
export interface SqliteTarget {
  loaded: LoadedTarget;
  config: SqliteTargetConfig;
  /** the database file; `${db}-wal` and `${db}-shm` beside it */
  db: string;
  backupsDir: string;
  /** backup files are `${prefix}_<time>.db.gz` */
  prefix: string;
  forensicsDir: string;
  sandboxDir: string;
  services: Record<string, ServiceAdapter>;
  flags?: FlagStore;
  initSqlFile?: string;
  errorLog?: string;
}

export const unsafePath = (message: string) => ApplicationFailure.nonRetryable(message, ErrorType.UnsafePath);

/** System trees no runbook writes into, whatever an environment file says. */
const FORBIDDEN_ROOTS = ['/proc', '/sys', '/dev', '/boot', '/bin', '/sbin', '/usr', '/lib', '/lib64', '/etc'];

function checkPath(file: string, field: string, path: string): string {
  const p = resolve(path);
  if (p === sep || FORBIDDEN_ROOTS.some((r) => p === r || p.startsWith(`${r}${sep}`)))
    throw unsafePath(`${file}: ${field}: ${p} is a system path; a runbook does not write there`);
  if (path.includes('\0')) throw unsafePath(`${file}: ${field}: contains a NUL byte`);
  return p;
}

const within = (dir: string, path: string) => path === dir || path.startsWith(`${dir}${sep}`);

/** Loads the target, resolves its paths relative to the environment file and refuses unsafe ones. */
export async function loadSqliteTarget(
  environmentsDir: string,
  ref: TargetRef,
  runner?: CommandRunner,
): Promise<SqliteTarget> {
  const loaded = await withEnvironmentErrors(async () => {
    const t = await loadTarget(environmentsDir, ref.environment, ref.target);
    requireSection(t, 'sqlite');
    return t;
  });
  const config = loaded.target.sqlite!;
  const field = `targets.${ref.target}.sqlite`;
  const db = checkPath(loaded.file, `${field}.path`, loaded.resolvePath(config.path));
  const backupsDir = checkPath(loaded.file, `${field}.backups.dir`, loaded.resolvePath(config.backups.dir));
  const forensicsDir = checkPath(
    loaded.file,
    `${field}.forensicsDir`,
    config.forensicsDir ? loaded.resolvePath(config.forensicsDir) : join(backupsDir, 'forensics'),
  );
  const sandboxDir = checkPath(
    loaded.file,
    `${field}.drill.sandboxDir`,
    config.drill.sandboxDir ? loaded.resolvePath(config.drill.sandboxDir) : join(backupsDir, 'drills'),
  );
  for (const [name, dir] of [
    ['backups.dir', backupsDir],
    ['forensicsDir', forensicsDir],
    ['drill.sandboxDir', sandboxDir],
  ] as const) {
    if (within(dir, db) || (dir === dirname(db) && name === 'drill.sandboxDir'))
      throw unsafePath(`${loaded.file}: ${field}.${name}: ${dir} must not contain the database file ${db}`);
  }
  const existing = await stat(db).catch(() => undefined);
  if (existing?.isDirectory()) throw unsafePath(`${loaded.file}: ${field}.path: ${db} is a directory`);
  const prefix =
    config.backups.prefix ??
    basename(db, extname(db))
      .toLowerCase()
      .replace(/[^a-z0-9._-]/g, '-');
  const services = Object.fromEntries(
    Object.entries(config.services).map(([name, svc]) => [name, serviceFromConfig(svc, loaded.resolvePath, runner)]),
  );
  return {
    loaded,
    config,
    db,
    backupsDir,
    prefix,
    forensicsDir,
    sandboxDir,
    services,
    flags: config.flags ? flagStoreFromConfig(config.flags, loaded.resolvePath, runner) : undefined,
    initSqlFile: config.init && 'sqlFile' in config.init ? loaded.resolvePath(config.init.sqlFile) : undefined,
    errorLog: config.monitor.errorLog ? loaded.resolvePath(config.monitor.errorLog) : undefined,
  };
}

/** The database's companion files, in the order a restore removes them. */
export const companions = (db: string) => ({ wal: `${db}-wal`, shm: `${db}-shm` });

/** Worker keys whose backup manifests this worker trusts: its own and the environment's evidence.workerKeys. */
export async function trustedWorkerKeys(t: Pick<SqliteTarget, 'loaded'>, own: string): Promise<string[]> {
  const keys = [own];
  for (const k of t.loaded.config.evidence.workerKeys) {
    if (PUBLIC_KEY_PATTERN.test(k.trim())) keys.push(k.trim());
    else {
      const line = await readFile(t.loaded.resolvePath(k), 'utf8').then(
        (s) => s.trim(),
        () => undefined,
      );
      if (line && PUBLIC_KEY_PATTERN.test(line)) keys.push(line);
    }
  }
  return keys;
}

/** Free bytes for an unprivileged writer on the filesystem holding `path` (or its nearest existing parent). */
export async function freeBytes(path: string): Promise<number> {
  for (let p = path; ; p = dirname(p)) {
    const s = await statfs(p).catch(() => undefined);
    if (s) return s.bavail * s.bsize;
    if (p === dirname(p)) throw new Error(`cannot stat the filesystem of ${path}`);
  }
}

/** true when both paths (or their nearest existing parents) are on one filesystem */
export async function sameFilesystem(a: string, b: string): Promise<boolean> {
  const dev = async (path: string): Promise<number> => {
    for (let p = path; ; p = dirname(p)) {
      const s = await stat(p).catch(() => undefined);
      if (s) return s.dev;
      if (p === dirname(p)) throw new Error(`cannot stat ${path}`);
    }
  };
  return (await dev(a)) === (await dev(b));
}

export const insufficientSpace = (message: string) =>
  ApplicationFailure.nonRetryable(message, ErrorType.InsufficientSpace);

/** Refuses (before anything is written) when `dir`'s filesystem has less than `bytes` plus a 5 % margin free. */
export async function requireSpace(dir: string, bytes: number, what: string): Promise<void> {
  const free = await freeBytes(dir);
  const needed = Math.ceil(bytes * 1.05);
  if (free < needed)
    throw insufficientSpace(
      `${what}: needs ${formatBytes(needed)} on the filesystem of ${dir}, ${formatBytes(free)} free`,
    );
}

/** The target's backups, newest first, judged against the keys this worker trusts (its own and the environment's). */
export async function listTargetBackups(t: SqliteTarget, ownPublicKey: string): Promise<ListedBackup[]> {
  return listBackups(t.backupsDir, t.prefix, await trustedWorkerKeys(t, ownPublicKey));
}
