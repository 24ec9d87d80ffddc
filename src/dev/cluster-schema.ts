/**
 * What a cluster's Postgres and namespace need before runbooks run: the two databases, their schema set up and
 * upgraded by Temporal's own schema tool (so an upgraded server finds its schema upgraded too), and the namespace
 * with its retention and our search attributes. Every step is idempotent: a second start changes nothing.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import pg from 'pg';
import { SEARCH_ATTRIBUTES } from '../shared/constants.js';
import { repoRoot } from './temporal-server.js';

export const sqlTool = join(repoRoot, '.tools', 'bin', 'temporal-sql-tool');
export const schemaDir = join(repoRoot, '.tools', 'share', 'temporal-schema', 'postgresql', 'v12');

/** The two databases of a Temporal server on SQL: persistence and (SQL) visibility. */
export const TEMPORAL_DATABASES = { temporal: 'temporal', visibility: 'temporal_visibility' } as const;

/** Where a server reaches Postgres, from a postgres:// URL (any database in it). */
export interface PostgresEndpoint {
  host: string;
  port: number;
  user: string;
  password: string;
}

export function endpointOf(url: string): PostgresEndpoint {
  const u = new URL(url);
  return {
    host: u.hostname || '127.0.0.1',
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
  };
}

/** The URL of `database` on the server of `url`. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Creates the databases that are missing (the URL's user needs CREATEDB). */
export async function ensureDatabases(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: withDatabase(url, 'postgres') });
  await client.connect();
  try {
    for (const name of Object.values(TEMPORAL_DATABASES)) {
      const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    }
  } finally {
    await client.end();
  }
}

/**
 * `temporal-sql-tool setup-schema -v 0.0` then `update-schema -d <versioned dir>` on both databases: the first start
 * creates the version tables and applies every versioned step; later starts find the version current (or apply the
 * steps a newer server brought). The password goes through SQL_PASSWORD, not the command line.
 */
export async function setupSchema(url: string, log: (line: string) => void = () => {}): Promise<void> {
  const e = endpointOf(url);
  for (const [dir, database] of [
    ['temporal', TEMPORAL_DATABASES.temporal],
    ['visibility', TEMPORAL_DATABASES.visibility],
  ] as const) {
    const env = {
      ...process.env,
      SQL_PLUGIN: 'postgres12',
      SQL_HOST: e.host,
      SQL_PORT: String(e.port),
      SQL_USER: e.user,
      SQL_PASSWORD: e.password,
      SQL_DATABASE: database,
    };
    await runSqlTool(['setup-schema', '-v', '0.0'], env);
    const out = await runSqlTool(['update-schema', '-d', join(schemaDir, dir, 'versioned')], env);
    const updates = [...out.matchAll(/Schema updated from (\S+) to (\S+)/g)];
    log(
      updates.length
        ? `schema of ${database} updated from ${updates[0]![1]} to ${updates.at(-1)![2]}`
        : `schema of ${database} is current`,
    );
  }
}

async function runSqlTool(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  try {
    const { stdout, stderr } = await promisify(execFile)(sqlTool, args, { env, maxBuffer: 16 * 1024 * 1024 });
    return stdout + stderr;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`temporal-sql-tool ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/** IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD of temporal.api.enums.v1 */
const KEYWORD = 2;

/**
 * The namespace with `retentionDays` of retention (updated when it differs) and SEARCH_ATTRIBUTES as Keyword
 * attributes (added when missing; one of another type is an error), then waits until the frontend serves a
 * visibility query on them (its namespace cache refreshes every few seconds).
 */
export async function ensureNamespace(
  connection: Connection,
  namespace: string,
  retentionDays: number,
  log: (line: string) => void = () => {},
): Promise<void> {
  const seconds = retentionDays * 86_400;
  const retention = msToTs(seconds * 1000);
  try {
    await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: retention });
    log(`namespace ${namespace} registered (retention ${retentionDays} days)`);
  } catch (err) {
    if ((err as { code?: number }).code !== 6 /* ALREADY_EXISTS */) throw err;
    const current = await connection.workflowService.describeNamespace({ namespace });
    const ttl = Number(current.config?.workflowExecutionRetentionTtl?.seconds ?? 0);
    if (ttl !== seconds) {
      await connection.workflowService.updateNamespace({
        namespace,
        config: { workflowExecutionRetentionTtl: retention },
      });
      log(`namespace ${namespace}: retention changed from ${ttl / 86_400} to ${retentionDays} days`);
    }
  }
  const listed = await connection.operatorService.listSearchAttributes({ namespace });
  const custom = listed.customAttributes ?? {};
  const missing = SEARCH_ATTRIBUTES.filter((name) => custom[name] === undefined);
  for (const name of SEARCH_ATTRIBUTES)
    if (custom[name] !== undefined && custom[name] !== KEYWORD)
      throw new Error(`search attribute ${name} exists in ${namespace} with type ${custom[name]}, not Keyword`);
  if (missing.length) {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((name) => [name, KEYWORD])),
    });
    log(`search attributes ${missing.join(', ')} added to ${namespace}`);
  }
  const query = SEARCH_ATTRIBUTES.map((name) => `${name} = 'cluster-probe'`).join(' AND ');
  for (let attempt = 0; ; attempt++) {
    try {
      await connection.workflowService.listWorkflowExecutions({ namespace, query, pageSize: 1 });
      return;
    } catch (err) {
      if (attempt >= 150) throw new Error(`namespace ${namespace} not queryable: ${(err as Error).message}`);
      await delay(200);
    }
  }
}
