import { ApplicationFailure } from '@temporalio/common';
import pg from 'pg';
import { serviceFromConfig } from '../adapters/index.js';
import type { CommandRunner, ServiceAdapter } from '../adapters/types.js';
import { loadTarget, requireSection, withEnvironmentErrors, type LoadedTarget } from '../environment.js';
import { ErrorType } from '../../shared/constants.js';
import type { PgBackupLocation, PostgresTargetConfig } from '../../shared/schemas.js';
import { S3Client } from '@aws-sdk/client-s3';
import { unsafePath } from '../sqlite/target.js';
import { resolve, sep } from 'node:path';

// A target's `postgres` section, loaded: where its backups are, how to reach the server (from the worker's own
// environment: the file names only the variable), its services as adapters.

export interface TargetRef {
  environment: string;
  target: string;
}

export interface PostgresTarget {
  loaded: LoadedTarget;
  config: PostgresTargetConfig;
  database: string;
  backupsDir: string;
  /** backup files are `${prefix}_<time>.dump` */
  prefix: string;
  /** safety dumps of the live database taken by restores: `<backupsDir>/safety` (never chosen by a restore) */
  safetyDir: string;
  services: Record<string, ServiceAdapter>;
  /** a connection string to `database` (or another database of the same server) */
  url(database?: string): string;
  /** an `s3` location: the bucket the local backupsDir mirrors */
  s3?: S3Location;
  /** the environment for pg_dump / pg_restore: PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE */
  commandEnv(database: string): NodeJS.ProcessEnv;
}

export interface S3Location {
  client: S3Client;
  bucket: string;
  prefix: string;
}

const SYSTEM_ROOTS = ['/proc', '/sys', '/dev', '/boot', '/bin', '/sbin', '/usr', '/lib', '/lib64', '/etc'];

export async function loadPostgresTarget(
  environmentsDir: string,
  ref: TargetRef,
  runner?: CommandRunner,
  /** false: the connection variable may be absent (listing backups needs no server) */
  connect = true,
): Promise<PostgresTarget> {
  const loaded = await withEnvironmentErrors(async () => {
    const t = await loadTarget(environmentsDir, ref.environment, ref.target);
    requireSection(t, 'postgres');
    return t;
  });
  const config = loaded.target.postgres!;
  const field = `targets.${ref.target}.postgres`;
  const raw = process.env[config.urlEnv] ?? (connect ? undefined : 'postgres://unset@localhost/unset');
  if (!raw)
    throw ApplicationFailure.nonRetryable(
      `${loaded.file}: ${field}.urlEnv: the worker has no ${config.urlEnv} in its environment`,
      ErrorType.EnvironmentInvalid,
    );
  let base: URL;
  try {
    base = new URL(raw);
  } catch {
    throw ApplicationFailure.nonRetryable(
      `${loaded.file}: ${field}.urlEnv: ${config.urlEnv} is not a postgres:// URL`,
      ErrorType.EnvironmentInvalid,
    );
  }
  const location = config.backups.location;
  const dirField = `${field}.backups.location.${location.type === 'local' ? 'dir' : 'cacheDir'}`;
  const backupsDir = resolve(loaded.resolvePath(location.type === 'local' ? location.dir : location.cacheDir));
  if (backupsDir === sep || SYSTEM_ROOTS.some((r) => backupsDir === r || backupsDir.startsWith(`${r}${sep}`)))
    throw unsafePath(`${loaded.file}: ${dirField}: ${backupsDir} is a system path`);
  const s3 = location.type === 's3' ? s3Location(location, `${loaded.file}: ${field}.backups.location`) : undefined;
  const url = (database = config.database) => {
    const u = new URL(base.href);
    u.pathname = `/${database}`;
    return u.href;
  };
  return {
    loaded,
    config,
    database: config.database,
    backupsDir,
    prefix: config.backups.prefix ?? config.database.replace(/_/g, '-'),
    safetyDir: `${backupsDir}${sep}safety`,
    s3,
    services: Object.fromEntries(
      Object.entries(config.services).map(([name, s]) => [name, serviceFromConfig(s, loaded.resolvePath, runner)]),
    ),
    url,
    commandEnv: (database) => ({
      ...process.env,
      PGHOST: base.hostname.replace(/^\[|\]$/g, ''),
      PGPORT: base.port || '5432',
      PGUSER: decodeURIComponent(base.username),
      PGPASSWORD: decodeURIComponent(base.password),
      PGDATABASE: database,
      PGCONNECT_TIMEOUT: '10',
    }),
  };
}

/** The S3 client of an `s3` location, its endpoint and credentials from the worker's variables it names. */
function s3Location(l: Extract<PgBackupLocation, { type: 's3' }>, where: string): S3Location {
  const need = (name: string, field: string) => {
    const v = process.env[name];
    if (!v)
      throw ApplicationFailure.nonRetryable(
        `${where}.${field}: the worker has no ${name} in its environment`,
        ErrorType.EnvironmentInvalid,
      );
    return v;
  };
  const endpoint = l.endpointEnv ? need(l.endpointEnv, 'endpointEnv') : undefined;
  const client = new S3Client({
    region: l.region,
    endpoint,
    // an S3-compatible server on its own host name: bucket in the path, not in the host
    forcePathStyle: endpoint !== undefined,
    credentials: {
      accessKeyId: need(l.accessKeyIdEnv, 'accessKeyIdEnv'),
      secretAccessKey: need(l.secretAccessKeyEnv, 'secretAccessKeyEnv'),
    },
  });
  return { client, bucket: l.bucket, prefix: l.prefix };
}

/** Runs `fn` with a connection to `database` (default: the application's), closed after. */
export async function withDatabase<T>(
  t: PostgresTarget,
  database: string,
  fn: (c: pg.Client) => Promise<T>,
): Promise<T> {
  const c = new pg.Client({ connectionString: t.url(database) });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

export const ident = (name: string) => pg.escapeIdentifier(name);

export async function databaseExists(c: pg.Client, name: string): Promise<boolean> {
  return (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
}

/** Exact row counts of every ordinary table outside the system schemas, as `schema.table` → rows. */
export async function countTableRows(c: pg.Client): Promise<Record<string, number>> {
  const tables = await c.query<{ s: string; t: string }>(
    `SELECT n.nspname AS s, c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
      ORDER BY 1, 2`,
  );
  const rows: Record<string, number> = {};
  for (const { s, t } of tables.rows) {
    const r = await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${ident(s)}.${ident(t)}`);
    rows[`${s}.${t}`] = Number(r.rows[0]!.n);
  }
  return rows;
}

/** The configured count queries (read-only, in a read-only transaction), by name. */
export async function runCountQueries(
  c: pg.Client,
  counts: PostgresTargetConfig['counts'],
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  await c.query('BEGIN READ ONLY');
  try {
    for (const q of counts) {
      const r = await c.query({ text: q.query, rowMode: 'array' });
      const v = Number((r.rows[0] as unknown[] | undefined)?.[0]);
      if (!Number.isFinite(v))
        throw ApplicationFailure.nonRetryable(
          `count query ${q.name} did not return a number`,
          ErrorType.EnvironmentInvalid,
        );
      out[q.name] = v;
    }
  } finally {
    await c.query('ROLLBACK');
  }
  return out;
}
