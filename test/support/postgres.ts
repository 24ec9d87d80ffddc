import { createServer, type Server } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import pg from 'pg';
import { stringify } from 'yaml';
import { environmentHeader } from '../../src/demo/environment.js';
import { seedTeams } from '../../src/demo/postgres-teams.js';
import { freePort } from '../../src/dev/ports.js';
import type { RunbookResult } from '../../src/shared/types.js';
import { makeStatefulKubectl, type KubectlState } from '../fakes/fake-kubectl.js';
import type { Harness } from './harness.js';
import { startRunbook } from './sqlite.js';

// A Postgres target of a test's own: a database of its own in the suite's Postgres (the seed's teams shape), an
// environment file naming it, an application as a Kubernetes Deployment (the recording fake kubectl) and a health
// endpoint in this process.

export const PG_URL_ENV = 'PG_RUNBOOK_TEST_URL';
let counter = 0;

export interface PgTestTarget {
  envName: string;
  database: string;
  backupsDir: string;
  kubeDir: string;
  namespace: string;
  /** rows of a query on a database of the server (default: the target's) */
  query<T = Record<string, unknown>>(sql: string, database?: string): Promise<T[]>;
  count(table: string, database?: string): Promise<number>;
  databases(): Promise<string[]>;
  /** the health endpoint answers with this status (200 healthy) */
  setHealth(status: number): void;
}

export const urlFor = (base: string, database: string) => {
  const u = new URL(base);
  u.pathname = `/${database}`;
  return u.href;
};

export async function pgQuery<T>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows as T[];
  } finally {
    await c.end();
  }
}

/** More teams after a backup (what a restore takes back). */
export async function addTeams(t: PgTestTarget, from: number, n: number): Promise<void> {
  await t.query(
    `INSERT INTO organizations_team SELECT i, 'Staging Test ' || i, 'st-' || i FROM generate_series(${from}, ${from + n - 1}) i;
     INSERT INTO teams_team SELECT i, 'Staging Test ' || i FROM generate_series(${from}, ${from + n - 1}) i;
     INSERT INTO organizations_teammigrationmap SELECT i, i FROM generate_series(${from}, ${from + n - 1}) i;`,
  );
}

export interface PgTargetOptions {
  rows?: number;
  /** how the count queries compare with the baseline */
  compare?: 'equal' | { within: number };
  replicas?: number;
  /** merged over the target's `postgres` section */
  postgres?: Record<string, unknown>;
}

/** The fake kubectl on PATH for this process and its child workers (one per harness). */
async function kubectlFor(h: Harness): Promise<string> {
  const dir = join(h.root, 'kube');
  if (!process.env.PATH!.startsWith(`${dir}:`)) {
    mkdirSync(dir, { recursive: true });
    await makeStatefulKubectl(dir, { configmaps: {}, deployments: {} });
    process.env.PATH = `${dir}:${process.env.PATH}`;
  }
  return dir;
}

export async function pgTarget(h: Harness, o: PgTargetOptions = {}): Promise<PgTestTarget> {
  process.env[PG_URL_ENV] = h.databaseUrl;
  const n = counter++;
  const envName = `pg${process.pid}-${n}`;
  const database = `pgr_${process.pid}_${n}`;
  await pgQuery(h.databaseUrl, `CREATE DATABASE ${database}`);
  await seedTeams(urlFor(h.databaseUrl, database), o.rows ?? 50);
  const kubeDir = await kubectlFor(h);
  const stateFile = join(kubeDir, 'kubectl.state.json');
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as KubectlState;
  const replicas = o.replicas ?? 3;
  state.deployments[`${envName}/teams-api`] = {
    spec: { replicas, template: { spec: { containers: [{ name: 'api', env: [] }] } } },
    status: { replicas, availableReplicas: replicas, readyReplicas: replicas },
  };
  writeFileSync(stateFile, JSON.stringify(state, null, 2));

  let healthStatus = 200;
  const server: Server = createServer((_req, res) => {
    res.writeHead(healthStatus).end(healthStatus === 200 ? 'healthy' : 'unhealthy');
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  h.onClose(async () => {
    server.close();
  });
  const compare = o.compare ?? 'equal';
  const backupsDir = join(h.root, 'data', envName, 'pg-backups');
  const doc = {
    ...environmentHeader({ name: envName, sections: { evidence: { workerKeys: [h.workerKey.publicKey] } } }),
    targets: {
      db: {
        health: { http: { url: `http://127.0.0.1:${port}/health`, expectBody: 'healthy', within: '8s' } },
        postgres: {
          urlEnv: PG_URL_ENV,
          database,
          services: { api: { type: 'kubernetes', deployment: 'teams-api', namespace: envName } },
          counts: [
            { name: 'vnext_teams', query: 'SELECT count(*) FROM organizations_team', compare },
            { name: 'legacy_teams', query: 'SELECT count(*) FROM teams_team WHERE is_active = true', compare },
            { name: 'mappings', query: 'SELECT count(*) FROM organizations_teammigrationmap', compare },
          ],
          backups: { location: { type: 'local', dir: backupsDir } },
          ...o.postgres,
        },
      },
    },
  };
  mkdirSync(h.environmentsDir, { recursive: true });
  writeFileSync(join(h.environmentsDir, `${envName}.yaml`), stringify(doc));
  const query = <T>(sql: string, db = database) => pgQuery<T>(urlFor(h.databaseUrl, db), sql);
  return {
    envName,
    database,
    backupsDir,
    kubeDir,
    namespace: envName,
    query,
    count: async (table, db) => Number((await query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`, db))[0]!.n),
    databases: async () =>
      (
        await pgQuery<{ d: string }>(
          h.databaseUrl,
          `SELECT datname AS d FROM pg_database WHERE datname LIKE '${database}%' ORDER BY 1`,
        )
      ).map((r) => r.d),
    setHealth: (s) => {
      healthStatus = s;
    },
  };
}

/** Runs postgres-backup on the target and returns the backup's file name. */
export async function pgBackup(h: Harness, t: PgTestTarget, input: Record<string, unknown> = {}): Promise<string> {
  const handle = await startPgRunbook(h, 'postgres-backup', t, input);
  const result = (await handle.result()) as RunbookResult;
  if (result.outcome !== 'succeeded') throw new Error(`backup ${result.outcome}`);
  return (result.extra as { backup: { file: string } }).backup.file;
}

export const startPgRunbook = (
  h: Harness,
  runbook: 'postgres-backup' | 'postgres-restore',
  t: PgTestTarget,
  input: Record<string, unknown> = {},
  workflowId?: string,
): Promise<WorkflowHandle> => startRunbook(h, runbook, { environment: t.envName, target: 'db', ...input }, workflowId);
