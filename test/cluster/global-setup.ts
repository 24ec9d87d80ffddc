/**
 * Global setup of the vitest project `cluster` (vitest.config.ts): instead of the dev server, the Temporal cluster of
 * `npm run cluster` (src/dev/cluster.ts: Temporal on its own embedded PostgreSQL, frontend, history, matching and
 * worker services each in its own process, 4 shards) on a free range of ports and a temporary data directory, without
 * worker processes (each test brings its own, on its own task queue) and without the UI. The demo data lives in a
 * PostgreSQL of its own (embedded, or DATABASE_URL), so restarting Temporal's database touches Temporal only.
 *
 * The tests run in other processes than this one, which holds the cluster: they restart, stop and kill its parts
 * through a small HTTP control channel on loopback (`clusterControlUrl`, test/support/cluster-control.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { freeBasePort, SERVICES, startCluster, type Cluster, type ServiceName } from '../../src/dev/cluster.js';
import { ensurePostgres, keepExitCode, type PostgresHandle } from '../../src/dev/postgres.js';
import { freePort } from '../../src/dev/ports.js';
import { bundleWorkflows } from '../../src/worker/worker.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** the cluster project's control channel (unset in the dev-server project) */
    clusterControlUrl: string;
  }
}

let cluster: Cluster | undefined;
let postgres: PostgresHandle | undefined;
let control: Server | undefined;
const dirs: string[] = [];

const ACTIONS = ['kill', 'stop', 'start', 'restart'] as const;
type Action = (typeof ACTIONS)[number];

export async function setup(project: TestProject): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'durable-runbooks-test-cluster-'));
  const postgresDir = mkdtempSync(join(tmpdir(), 'durable-runbooks-pg-'));
  dirs.push(dataDir, postgresDir);
  const [basePort, pgPort, code] = await Promise.all([freeBasePort(0), freePort(), bundleWorkflows()]);
  postgres = await ensurePostgres({ dataDir: postgresDir, port: pgPort, database: 'durable_runbooks_test' });
  // teardown stops everything; a failed test must still fail the run (exit code 1, not async-exit-hook's 0)
  keepExitCode();
  cluster = await startCluster({ dataDir, basePort, workers: 0, ui: false });
  const bundle = join(dataDir, 'workflow-bundle.js');
  writeFileSync(bundle, code);
  control = await serveControl(cluster);
  const { port } = control.address() as { port: number };
  project.provide('temporalAddress', cluster.address);
  project.provide('workflowBundlePath', bundle);
  project.provide('databaseUrl', postgres.url);
  project.provide('clusterControlUrl', `http://127.0.0.1:${port}`);
}

export async function teardown(): Promise<void> {
  await new Promise((resolve) => (control ? control.close(resolve) : resolve(undefined)));
  await cluster?.stop();
  await postgres?.stop();
  // the cluster's logs are in <dataDir>/logs: KEEP_TEST_FILES=1 keeps them
  if (process.env.KEEP_TEST_FILES !== '1') for (const d of dirs) rmSync(d, { recursive: true, force: true });
  else process.stderr.write(`cluster data and logs kept in ${dirs[0]}, the demo PostgreSQL in ${dirs[1]}\n`);
}

/**
 * POST /services/<frontend|history|matching|worker>/<kill|stop|start|restart>, POST /postgres/<stop|start|restart>
 * (each answers once done: a started service serves), GET /pids (the services' pids). One operation at a time.
 */
function serveControl(c: Cluster): Promise<Server> {
  let queue: Promise<unknown> = Promise.resolve();
  const run = (op: () => Promise<unknown>) => (queue = queue.then(op, op));
  const server = createServer((req, res) => {
    const [kind, name, action] = (req.url ?? '').split('/').filter(Boolean);
    let op: (() => Promise<unknown>) | undefined;
    if (req.method === 'GET' && kind === 'pids')
      op = async () => Object.fromEntries(SERVICES.map((s) => [s, c.servicePid(s) ?? null]));
    else if (req.method === 'POST' && kind === 'services' && SERVICES.includes(name as ServiceName)) {
      const service = name as ServiceName;
      const ops: Record<Action, () => Promise<void>> = {
        kill: () => c.killService(service, 'SIGKILL'),
        stop: () => c.stopService(service),
        start: () => c.startService(service),
        restart: () => c.restartService(service),
      };
      op = ACTIONS.includes(action as Action) ? ops[action as Action] : undefined;
    } else if (req.method === 'POST' && kind === 'postgres' && ['stop', 'start', 'restart'].includes(name ?? ''))
      op = () => c.postgres[name as 'stop' | 'start' | 'restart']();
    if (!op) {
      res.writeHead(404).end(`unknown: ${req.method} ${req.url}\n`);
      return;
    }
    run(op).then(
      (body) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body ?? null)),
      (err: Error) => res.writeHead(500).end(`${err.message}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}
