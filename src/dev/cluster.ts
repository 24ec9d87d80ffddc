/**
 * A Temporal cluster on one machine, shaped like production: PostgreSQL (embedded in the data directory, or
 * DATABASE_URL) with Temporal's schema set up and upgraded by its schema tool, the Temporal server v1.29.1 with
 * frontend, history (several shards), matching and worker services each in its own process (so one can be
 * restarted alone), the namespace with 30-day retention and our search attributes, the Web UI server, and N worker
 * processes (`npm run worker`'s entry) with their own metrics ports. Everything listens on loopback, on ports derived
 * from one base port (src/dev/cluster-ports.ts). `npm run cluster` (src/dev/cluster-main.ts) runs it; tests and
 * benchmarks call startCluster() and get handles to restart, stop or kill each part.
 *
 * The data directory keeps the Postgres data (so a second start finds the workflows of the first), the generated
 * configuration, each process's log (logs/<name>.log), the workers' evidence key and the workflow bundle.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Connection } from '@temporalio/client';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { readOrCreatePrivateKey } from '../activities/keys.js';
import { DEFAULT_NAMESPACE } from '../shared/constants.js';
import { bundleWorkflows } from '../worker/worker.js';
import {
  allPorts,
  busyPorts,
  clusterPorts,
  DEFAULT_BASE_PORT,
  SERVICES,
  type ClusterPorts,
  type ServiceName,
} from './cluster-ports.js';
import {
  serviceProcess,
  startPostgres,
  temporalServerBin,
  temporalUiServerBin,
  uiServerProcess,
  workerProcess,
} from './cluster-parts.js';
import { ProcessRegistry, type ManagedProcess } from './cluster-process.js';
import {
  ensureDatabases,
  ensureNamespace,
  setupSchema,
  sqlTool,
  TEMPORAL_DATABASES,
  withDatabase,
} from './cluster-schema.js';
import { repoRoot } from './temporal-server.js';

export { clusterPorts, freeBasePort, DEFAULT_BASE_PORT, SERVICES } from './cluster-ports.js';
export type { ClusterPorts, ServiceName } from './cluster-ports.js';

export { temporalServerBin, temporalUiServerBin } from './cluster-parts.js';
export const CLUSTER_RETENTION_DAYS = 30;
export { CLUSTER_HISTORY_SHARDS } from './cluster-parts.js';

export interface ClusterOptions {
  /** Postgres data (embedded), generated config, logs, worker key, workflow bundle (default .data/cluster) */
  dataDir?: string;
  /** ports base..base+99 and base+1000 (default 7233: the frontend where `runbook` and `temporal` look) */
  basePort?: number;
  /** run the Web UI server (default: when it was built) */
  ui?: boolean;
  /** its port (default base + 1000; 8233 for the default base) */
  uiPort?: number;
  /** worker processes (default 2; 0 for none: tests start their own on their own task queues) */
  workers?: number;
  /** an existing PostgreSQL server (its user may create databases) instead of the embedded one */
  databaseUrl?: string;
  /** the namespace created with our search attributes (default `default`, where the CLI and worker look) */
  namespace?: string;
  retentionDays?: number;
  /** history shards (default 4); fixed when the database is first set up, later starts keep the first value */
  historyShards?: number;
  /** dynamic config on top of config/temporal/dynamicconfig.yaml, key → value (all constraints) */
  dynamicConfig?: Record<string, unknown>;
  /** the server's log level (default warn) */
  serverLogLevel?: 'debug' | 'info' | 'warn' | 'error';
  /**
   * environment of the worker processes, on top of this process's and the cluster's (TEMPORAL_ADDRESS,
   * TEMPORAL_NAMESPACE, METRICS_PORT, WORKER_KEY_FILE, WORKFLOW_BUNDLE_PATH): e.g. TEMPORAL_TASK_QUEUE,
   * ENVIRONMENTS_DIR, EVIDENCE_DIR. LOG_LEVEL must stay info or lower (their "worker ready" line says they poll).
   */
  workerEnv?: Record<string, string>;
  /** a prebuilt workflow bundle for the workers (default: bundled once per start into the data directory) */
  workflowBundlePath?: string;
  /** progress lines (default: none) */
  onProgress?: (line: string) => void;
}

/** One worker process (src/worker/main.ts, as `npm run worker`). */
export interface ClusterWorker {
  /** 0-based; worker-<index+1> in logs */
  readonly index: number;
  readonly name: string;
  readonly metricsPort: number;
  readonly pid: number | undefined;
  readonly running: boolean;
  /** its log file (JSON lines) */
  readonly logFile: string;
  /** sends a signal (default SIGKILL, a crash) and waits for the exit */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** graceful: SIGTERM, finishing in-flight tasks (SIGKILL after 20 s) */
  stop(): Promise<void>;
  /** starts it again (after kill or stop) and waits until it polls */
  start(): Promise<void>;
  restart(): Promise<void>;
}

/** The cluster's PostgreSQL. */
export interface ClusterPostgres {
  /** false for a DATABASE_URL server, which the cluster never stops or starts */
  readonly embedded: boolean;
  /** the server, database `postgres` (Temporal's databases are `temporal` and `temporal_visibility`) */
  readonly url: string;
  /** stops the embedded server (fast shutdown: open connections are closed) */
  stop(): Promise<void>;
  start(): Promise<void>;
  restart(): Promise<void>;
}

export interface Cluster {
  /** the frontend, host:port (TEMPORAL_ADDRESS, `temporal --address`) */
  readonly address: string;
  readonly namespace: string;
  /** the Web UI, when it runs */
  readonly uiUrl?: string;
  /** Temporal's persistence database (the visibility one is visibilityDatabaseUrl) */
  readonly databaseUrl: string;
  readonly visibilityDatabaseUrl: string;
  readonly ports: ClusterPorts;
  readonly dataDir: string;
  readonly logDir: string;
  readonly postgres: ClusterPostgres;
  /** the evidence key every worker process signs with (workerEnv.WORKER_KEY_FILE, else <dataDir>/keys/worker.key) */
  readonly workerKeyFile: string;
  /** its public key line, for an environment's evidence.workerKeys */
  readonly workerPublicKey: string;
  /** the worker processes, in start order (addWorker appends) */
  readonly workers: ClusterWorker[];
  /** pid of a service's process while it runs */
  servicePid(name: ServiceName | 'ui'): number | undefined;
  /** stops a service's process (SIGTERM, graceful) */
  stopService(name: ServiceName | 'ui'): Promise<void>;
  /** starts it again and waits until it serves */
  startService(name: ServiceName | 'ui'): Promise<void>;
  restartService(name: ServiceName | 'ui'): Promise<void>;
  /** sends a signal to a service's process (default SIGKILL) and waits for the exit */
  killService(name: ServiceName | 'ui', signal?: NodeJS.Signals): Promise<void>;
  /** one more worker process (its own metrics port), started; `env` on top of workerEnv */
  addWorker(env?: Record<string, string>): Promise<ClusterWorker>;
  /** stops everything: workers (graceful), UI, frontend, worker service, matching, history, then Postgres */
  stop(): Promise<void>;
}

/** Starts (or, on a data directory used before, restarts) the cluster and waits until it serves. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const started = Date.now();
  const say = options.onProgress ?? (() => {});
  for (const bin of [temporalServerBin, sqlTool])
    if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`npm run setup\` (it builds the cluster tools)`);
  const dataDir = resolve(options.dataDir ?? join(repoRoot, '.data', 'cluster'));
  const logDir = join(dataDir, 'logs');
  const workerCount = options.workers ?? 2;
  const ui = options.ui ?? existsSync(temporalUiServerBin);
  if (ui && !existsSync(temporalUiServerBin))
    throw new Error(`${temporalUiServerBin} is missing: run \`npm run setup\`, or start without the UI`);
  const ports = clusterPorts(options.basePort ?? DEFAULT_BASE_PORT, options.uiPort);
  const namespace = options.namespace ?? DEFAULT_NAMESPACE;
  const workerLogLevel = options.workerEnv?.LOG_LEVEL ?? 'info';
  if (!['trace', 'debug', 'info'].includes(workerLogLevel))
    throw new Error(
      `workerEnv.LOG_LEVEL ${workerLogLevel}: cluster workers log at info or lower (their "worker ready" line)`,
    );
  mkdirSync(logDir, { recursive: true });
  // as root the embedded Postgres runs as user postgres, which must be able to enter the data directory
  if (!options.databaseUrl && process.getuid?.() === 0) {
    chmodSync(dataDir, 0o755);
    for (let dir = dirname(dataDir); dir !== dirname(dir); dir = dirname(dir)) {
      const mode = statSync(dir).mode & 0o777;
      if ((mode & 0o001) === 0)
        throw new Error(
          `${dir} is not traversable by others (mode ${mode.toString(8)}): as root the embedded Postgres runs as user postgres and cannot reach ${dataDir}; chmod o+x ${dir} or choose another --data-dir`,
        );
    }
  }

  const registry = new ProcessRegistry(join(dataDir, 'processes.json'));
  const leftovers = await registry.reapLeftovers();
  if (leftovers.length) say(`ended what a previous run left running: ${leftovers.join(', ')}`);
  const busy = await busyPorts(allPorts(ports, workerCount, { ui, postgres: !options.databaseUrl }));
  if (busy.length) throw new Error(`ports ${busy.join(', ')} are in use: choose another base port`);

  const postgres = await startPostgres(options.databaseUrl, dataDir, ports.postgres, registry);
  const stopAll: Array<() => Promise<void>> = [() => postgres.stop()];
  try {
    say(`PostgreSQL ready (${postgres.embedded ? `embedded, data in ${join(dataDir, 'postgres')}` : 'DATABASE_URL'})`);
    await ensureDatabases(postgres.url);
    await setupSchema(postgres.url, say);

    // the workers' workflow bundle, built once while the server starts (none needed without workers)
    let bundle: Promise<string> | undefined;
    const bundlePath = () =>
      (bundle ??= options.workflowBundlePath
        ? Promise.resolve(options.workflowBundlePath)
        : bundleWorkflows().then((code) => {
            const path = join(dataDir, 'workflow-bundle.js');
            writeFileSync(path, code);
            return path;
          }));
    if (workerCount) bundlePath().catch(() => {}); // awaited (and its failure reported) by addWorker

    const configDir = join(dataDir, 'temporal', 'config');
    writeServerConfig(configDir, options.dynamicConfig);
    const services = Object.fromEntries(
      SERVICES.map((name) => [
        name,
        serviceProcess(name, { configDir, ports, postgresUrl: postgres.url, logDir, registry, options }),
      ]),
    ) as Record<ServiceName, ManagedProcess>;
    const uiProcess = ui ? uiServerProcess({ configDir, ports, namespace, logDir, registry }) : undefined;
    stopAll.push(() => stopServices(services, uiProcess));
    // matching first: on a new database the first process writes the cluster metadata, and processes starting at
    // once would race to (the losers exit with "failed to initialize current cluster metadata")
    await services.matching.start();
    await Promise.all(SERVICES.filter((s) => s !== 'matching').map((name) => services[name].start()));
    const address = `127.0.0.1:${ports.grpc.frontend}`;
    say(`Temporal server ${SERVICES.join(', ')} serving (frontend ${address})`);

    const connection = await Connection.connect({ address });
    try {
      await ensureNamespace(connection, namespace, options.retentionDays ?? CLUSTER_RETENTION_DAYS, say);
    } finally {
      await connection.close();
    }
    await uiProcess?.start();

    const workerKeyFile = resolve(options.workerEnv?.WORKER_KEY_FILE ?? join(dataDir, 'keys', 'worker.key'));
    // created once here: workers starting together would each create a different one
    const workerKey = await readOrCreatePrivateKey(workerKeyFile);
    const workers: ClusterWorker[] = [];
    let nextWorker = 0;
    const addWorker = async (env: Record<string, string> = {}): Promise<ClusterWorker> => {
      const index = nextWorker++;
      const worker = workerProcess(index, {
        ports,
        logDir,
        registry,
        env: {
          TEMPORAL_ADDRESS: address,
          TEMPORAL_NAMESPACE: namespace,
          WORKER_KEY_FILE: workerKeyFile,
          WORKFLOW_BUNDLE_PATH: await bundlePath(),
          LOG_LEVEL: 'info',
          ...options.workerEnv,
          ...env,
          METRICS_PORT: String(ports.workerMetrics(index)),
        },
      });
      workers[index] = worker;
      await worker.start();
      return worker;
    };
    stopAll.push(() => Promise.all(workers.map((w) => w?.stop())).then(() => {}));
    await Promise.all(Array.from({ length: workerCount }, () => addWorker()));
    if (workerCount) say(`${workerCount} worker process${workerCount > 1 ? 'es' : ''} polling`);
    say(`cluster ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    const processOf = (name: ServiceName | 'ui'): ManagedProcess => {
      if (name === 'ui') {
        if (!uiProcess) throw new Error('this cluster runs without the UI');
        return uiProcess;
      }
      return services[name];
    };
    let stopping: Promise<void> | undefined;
    return {
      address,
      namespace,
      uiUrl: ui ? `http://127.0.0.1:${ports.ui}` : undefined,
      databaseUrl: withDatabase(postgres.url, TEMPORAL_DATABASES.temporal),
      visibilityDatabaseUrl: withDatabase(postgres.url, TEMPORAL_DATABASES.visibility),
      ports,
      dataDir,
      logDir,
      postgres,
      workerKeyFile,
      workerPublicKey: workerKey.publicKey,
      workers,
      servicePid: (name) => processOf(name).pid,
      stopService: (name) => processOf(name).stop(),
      startService: (name) => processOf(name).start(),
      restartService: (name) => processOf(name).restart(),
      killService: (name, signal = 'SIGKILL') => processOf(name).kill(signal),
      addWorker,
      stop: () => (stopping ??= stopInOrder(stopAll)),
    };
  } catch (err) {
    await stopInOrder(stopAll).catch(() => {});
    throw err;
  }
}

/** Runs the stop functions last-registered first: workers, then the server, then Postgres. */
async function stopInOrder(stops: Array<() => Promise<void>>): Promise<void> {
  for (const stop of [...stops].reverse()) await stop();
}

async function stopServices(services: Record<ServiceName, ManagedProcess>, ui?: ManagedProcess): Promise<void> {
  await ui?.stop();
  for (const name of ['frontend', 'worker', 'matching', 'history'] as const) await services[name].stop();
}

/** config/temporal/server.yaml as is (the server renders it) and the dynamic config with `overrides` merged. */
function writeServerConfig(configDir: string, overrides: Record<string, unknown> = {}): void {
  mkdirSync(configDir, { recursive: true });
  for (const file of ['server.yaml', 'ui.yaml'])
    copyFileSync(join(repoRoot, 'config', 'temporal', file), join(configDir, file));
  const dynamic = (parseYaml(readFileSync(join(repoRoot, 'config', 'temporal', 'dynamicconfig.yaml'), 'utf8')) ??
    {}) as Record<string, unknown>;
  for (const [key, value] of Object.entries(overrides)) dynamic[key] = [{ value }];
  writeFileSync(
    join(configDir, 'dynamicconfig.yaml'),
    `# generated by src/dev/cluster.ts from config/temporal/dynamicconfig.yaml\n${stringifyYaml(dynamic)}`,
  );
}
