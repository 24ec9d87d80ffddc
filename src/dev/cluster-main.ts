/**
 * `npm run cluster [-- --workers N --port BASE --ui-port PORT --no-ui --data-dir DIR]`: the Temporal cluster of
 * src/dev/cluster.ts in the foreground (PostgreSQL embedded in DIR, default .data/cluster, or DATABASE_URL), with
 * N worker processes (default 2) on the default task queue. Prints where everything listens; Ctrl-C stops it all.
 * A second start on the same data directory finds the workflows of the first.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { ensureDemoKey } from '../demo/keys.js';
import { releasePostgresSignalHandlers } from './postgres.js';
import { repoRoot } from './temporal-server.js';
import { startCluster, DEFAULT_BASE_PORT, SERVICES, type Cluster } from './cluster.js';
import { MAX_CLUSTER_WORKERS } from './cluster-ports.js';

const SUPERVISED = 'DURABLE_RUNBOOKS_CLUSTER_SUPERVISED';
const say = (line = ''): void => void process.stdout.write(`${line}\n`);

const { values: flags } = parseArgs({
  options: {
    workers: { type: 'string', default: '2' },
    port: { type: 'string', default: String(DEFAULT_BASE_PORT) },
    'ui-port': { type: 'string' },
    'no-ui': { type: 'boolean', default: false },
    'data-dir': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

function integer(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`--${name} ${value}: expected an integer from ${min} to ${max}\n`);
    process.exit(2);
  }
  return n;
}

if (flags.help) {
  say('npm run cluster [-- --workers N] [--port BASE] [--ui-port PORT] [--no-ui] [--data-dir DIR]');
  say('  --workers   worker processes (default 2; 0 for none)');
  say(`  --port      base port: frontend on BASE, the others on BASE+1..BASE+99 (default ${DEFAULT_BASE_PORT})`);
  say('  --ui-port   Web UI port (default BASE+1000)');
  say('  --data-dir  Postgres data, config, logs (default .data/cluster); DATABASE_URL: use that Postgres instead');
  process.exit(0);
}

const workers = integer('workers', flags.workers, 0, MAX_CLUSTER_WORKERS)!;
const basePort = integer('port', flags.port, 1024, 64535)!;
const uiPort = integer('ui-port', flags['ui-port'], 1, 65535);

if (!process.env[SUPERVISED]) supervise();
else void run();

/**
 * Ctrl-C in a terminal signals the whole foreground process group: Postgres and each service would stop at once, on
 * their own. So the cluster runs in a child with a process group of its own, and this process turns the first
 * SIGINT, SIGTERM or SIGHUP into one SIGTERM to it, which stops everything in order.
 */
function supervise(): void {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, [SUPERVISED]: '1' },
  });
  let forwarded = false;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.on(signal, () => {
      if (forwarded) return;
      forwarded = true;
      child.kill('SIGTERM');
    });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

async function run(): Promise<void> {
  // the cluster stops its Postgres itself, after the server
  releasePostgresSignalHandlers();
  let cluster: Cluster | undefined;
  let stopping = false;
  const shutdown = async (why: string) => {
    if (stopping) return;
    stopping = true;
    if (!cluster) return say(`${why}: stopping once started`);
    say(`${why}: stopping workers, UI, Temporal services, Postgres ...`);
    await cluster.stop();
    say('cluster stopped');
    process.exit(0);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void shutdown(signal));
  // whoever ran this is gone (killed without a chance to signal): stop rather than run on unowned
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && void shutdown('parent gone'), 1000).unref();
  try {
    // the workers sign evidence with WORKER_KEY_FILE, else npm start's key (.data/keys/worker.key), the one
    // environments/demo*.yaml trust
    const workerKeyFile = process.env.WORKER_KEY_FILE ?? join(repoRoot, '.data', 'keys', 'worker.key');
    // .data itself stays traversable (a key file's directories are created 0700): as root the embedded Postgres
    // runs as user postgres and must reach .data/cluster
    mkdirSync(join(repoRoot, '.data'), { recursive: true });
    if (!process.env.WORKER_KEY_FILE) await ensureDemoKey(join(repoRoot, '.data', 'keys'), 'worker');
    cluster = await startCluster({
      dataDir: flags['data-dir'],
      basePort,
      uiPort,
      ui: flags['no-ui'] ? false : undefined,
      workers,
      databaseUrl: process.env.DATABASE_URL,
      workerEnv: { WORKER_KEY_FILE: workerKeyFile },
      onProgress: (line) => say(`[cluster] ${line}`),
    });
  } catch (err) {
    process.stderr.write(`cluster did not start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  if (stopping) {
    stopping = false;
    return shutdown('stopped while starting');
  }
  printAddresses(cluster);
  // keep running until a signal
  setInterval(() => {}, 1 << 30);
}

function printAddresses(c: Cluster): void {
  const p = c.ports;
  const pgUrl = c.postgres.embedded ? c.databaseUrl : c.databaseUrl.replace(/:[^:@/]*@/, ':***@');
  say();
  say(`Temporal frontend   ${c.address}  (namespace ${c.namespace}; TEMPORAL_ADDRESS for runbook, npm run worker)`);
  say(`Web UI              ${c.uiUrl ?? 'not running (--no-ui, or .tools/bin/temporal-ui-server missing)'}`);
  say(`PostgreSQL          ${pgUrl}  (+ ${c.visibilityDatabaseUrl.split('/').pop()})`);
  say(`services            ${SERVICES.map((s) => `${s} pid ${c.servicePid(s)} metrics :${p.metrics[s]}`).join(', ')}`);
  for (const w of c.workers) say(`${w.name.padEnd(20)}pid ${w.pid}, metrics http://127.0.0.1:${w.metricsPort}/metrics`);
  say(`evidence key        ${c.workerKeyFile}`);
  say(`logs                ${c.logDir}`);
  say();
  const address = c.address === `127.0.0.1:${DEFAULT_BASE_PORT}` ? '' : ` --address ${c.address}`;
  say(`try: .tools/bin/temporal workflow list${address}`);
  say('Ctrl-C stops everything; the next start reuses the data.');
}
