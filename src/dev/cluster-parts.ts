/**
 * The processes of a cluster (src/dev/cluster.ts) and how each one is known to be ready: a Temporal service by its
 * gRPC health (history: SERVING once it owns its shards), the worker service (no gRPC server) by its membership port, the UI by its page,
 * a worker by its "worker ready" line; and the embedded PostgreSQL, stopped and started again in place.
 */
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { ManagedProcess, type ProcessRegistry } from './cluster-process.js';
import type { ClusterPorts, ServiceName } from './cluster-ports.js';
import { endpointOf, withDatabase } from './cluster-schema.js';
import { ensurePostgres, type PostgresHandle } from './postgres.js';
import { repoRoot } from './temporal-server.js';
import type { ClusterOptions, ClusterPostgres, ClusterWorker } from './cluster.js';

export const CLUSTER_HISTORY_SHARDS = 4;

export const temporalServerBin = join(repoRoot, '.tools', 'bin', 'temporal-server');
export const temporalUiServerBin = join(repoRoot, '.tools', 'bin', 'temporal-ui-server');

/** the gRPC health service name each Temporal service reports (the worker service has none) */
const HEALTH_NAMES: Partial<Record<ServiceName, string>> = {
  frontend: 'temporal.api.workflowservice.v1.WorkflowService',
  history: 'temporal.api.workflowservice.v1.HistoryService',
  matching: 'temporal.api.workflowservice.v1.MatchingService',
};

/** Polls `check` every 250 ms until it resolves true (start() of the process bounds the wait). */
async function until(check: () => Promise<boolean>): Promise<void> {
  for (;;) {
    if (await check().catch(() => false)) return;
    await delay(250);
  }
}

async function grpcServing(port: number, service: string): Promise<boolean> {
  const connection = Connection.lazy({ address: `127.0.0.1:${port}` });
  try {
    const response = await connection.withDeadline(Date.now() + 1000, () =>
      connection.healthService.check({ service }),
    );
    return response.status === 1; // SERVING
  } finally {
    await connection.close();
  }
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** One Temporal service: `temporal-server --root <dataDir>/temporal --config config --env server start --service <name>`. */
export function serviceProcess(
  name: ServiceName,
  o: {
    configDir: string;
    ports: ClusterPorts;
    postgresUrl: string;
    logDir: string;
    registry: ProcessRegistry;
    options: ClusterOptions;
  },
): ManagedProcess {
  const p = o.ports;
  const db = endpointOf(o.postgresUrl);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LOG_LEVEL: o.options.serverLogLevel ?? 'warn',
    NUM_HISTORY_SHARDS: String(o.options.historyShards ?? CLUSTER_HISTORY_SHARDS),
    POSTGRES_SEEDS: db.host,
    DB_PORT: String(db.port),
    POSTGRES_USER: db.user,
    POSTGRES_PWD: db.password,
    BIND_ON_IP: '127.0.0.1',
    TEMPORAL_BROADCAST_ADDRESS: '127.0.0.1',
    FRONTEND_GRPC_PORT: String(p.grpc.frontend),
    FRONTEND_HTTP_PORT: String(p.frontendHttp),
    HISTORY_GRPC_PORT: String(p.grpc.history),
    MATCHING_GRPC_PORT: String(p.grpc.matching),
    WORKER_GRPC_PORT: String(p.grpc.worker),
    FRONTEND_MEMBERSHIP_PORT: String(p.membership.frontend),
    HISTORY_MEMBERSHIP_PORT: String(p.membership.history),
    MATCHING_MEMBERSHIP_PORT: String(p.membership.matching),
    WORKER_MEMBERSHIP_PORT: String(p.membership.worker),
    PROMETHEUS_ENDPOINT: `127.0.0.1:${p.metrics[name]}`,
    DYNAMIC_CONFIG_FILE_PATH: join(o.configDir, 'dynamicconfig.yaml'),
  };
  const health = HEALTH_NAMES[name];
  return new ManagedProcess(
    {
      name,
      command: temporalServerBin,
      // no authorizer: everything listens on loopback (--allow-no-auth says so, and silences the warning)
      args: [
        ...['--root', join(o.configDir, '..'), '--config', 'config', '--env', 'server', '--allow-no-auth'],
        ...['start', '--service', name],
      ],
      env,
      cwd: join(o.configDir, '..'),
      logFile: join(o.logDir, `${name}.log`),
      ready: () => until(() => (health ? grpcServing(p.grpc[name], health) : tcpOpen(p.membership[name]))),
    },
    o.registry,
  );
}

/** The Web UI server on config/temporal/ui.yaml (rendered by the UI server itself). */
export function uiServerProcess(o: {
  configDir: string;
  ports: ClusterPorts;
  namespace: string;
  logDir: string;
  registry: ProcessRegistry;
}): ManagedProcess {
  const url = `http://127.0.0.1:${o.ports.ui}`;
  return new ManagedProcess(
    {
      name: 'ui',
      command: temporalUiServerBin,
      args: ['--root', join(o.configDir, '..'), '--config', 'config', '--env', 'ui', 'start'],
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: `127.0.0.1:${o.ports.grpc.frontend}`,
        TEMPORAL_UI_HOST: '127.0.0.1',
        TEMPORAL_UI_PORT: String(o.ports.ui),
        TEMPORAL_DEFAULT_NAMESPACE: o.namespace,
        TEMPORAL_CORS_ORIGINS: `${url},http://localhost:${o.ports.ui}`,
      },
      cwd: join(o.configDir, '..'),
      logFile: join(o.logDir, 'ui.log'),
      ready: () => until(async () => (await fetch(`${url}/api/v1/namespaces`)).ok),
    },
    o.registry,
  );
}

/** Worker process `index`: `npm run worker`'s entry with UV_THREADPOOL_SIZE as that script sets it. */
export function workerProcess(
  index: number,
  o: { ports: ClusterPorts; logDir: string; registry: ProcessRegistry; env: Record<string, string> },
): ClusterWorker {
  const name = `worker-${index + 1}`;
  const logFile = join(o.logDir, `${name}.log`);
  const metricsPort = Number(o.env.METRICS_PORT);
  const p: ManagedProcess = new ManagedProcess(
    {
      name,
      command: process.execPath,
      args: ['--import', 'tsx', join(repoRoot, 'src', 'worker', 'main.ts')],
      env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '64', ...o.env },
      cwd: repoRoot,
      logFile,
      startTimeoutMs: 120_000,
      ready: (proc) => proc.waitForLine((line) => line.includes('"msg":"worker ready"')).then(() => {}),
    },
    o.registry,
  );
  return {
    index,
    name,
    metricsPort,
    logFile,
    get pid() {
      return p.pid;
    },
    get running() {
      return p.running;
    },
    kill: (signal = 'SIGKILL') => p.kill(signal),
    stop: () => p.stop(),
    start: () => p.start(),
    restart: () => p.restart(),
  };
}

/** The embedded server in `<dataDir>/postgres` on `port`, or the DATABASE_URL server (never stopped). */
export async function startPostgres(
  databaseUrl: string | undefined,
  dataDir: string,
  port: number,
  registry: ProcessRegistry,
): Promise<ClusterPostgres> {
  if (databaseUrl) {
    const refuse = async () => {
      throw new Error('the cluster runs on DATABASE_URL: its Postgres is not the cluster’s to stop or start');
    };
    return {
      embedded: false,
      url: withDatabase(databaseUrl, 'postgres'),
      stop: async () => {},
      start: refuse,
      restart: refuse,
    };
  }
  const pgDir = join(dataDir, 'postgres');
  let handle: PostgresHandle | undefined;
  const start = async () => {
    if (handle) return;
    handle = await ensurePostgres({ dataDir: pgDir, port, database: 'postgres', forceEmbedded: true });
    const pid = postmasterPid(pgDir);
    if (pid) registry.add('postgres', pid);
  };
  const stop = async () => {
    if (!handle) return;
    const h = handle;
    handle = undefined;
    const pid = postmasterPid(pgDir);
    await h.stop();
    registry.remove('postgres', pid);
  };
  await start();
  return {
    embedded: true,
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    stop,
    start,
    restart: async () => {
      await stop();
      await start();
    },
  };
}

function postmasterPid(pgDir: string): number | undefined {
  try {
    return Number(readFileSync(join(pgDir, 'pgdata', 'postmaster.pid'), 'utf8').split('\n')[0]) || undefined;
  } catch {
    return undefined;
  }
}
