/**
 * Sections 1 and 2 on a Temporal cluster (src/dev/cluster.ts, as `npm run cluster` starts it: frontend, history,
 * matching and worker services each in its own process, several history shards, persistence and visibility on an
 * embedded PostgreSQL), in the same run as on the dev server: started on a free range of ports in the run's
 * directory, without its worker processes or UI (the sections bring their own workers), and stopped right after.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freeBasePort, SERVICES, startCluster, temporalServerBin, type Cluster } from '../../src/dev/cluster.js';
import { benchOverhead, type OverheadRun } from './overhead.js';
import { benchResume, type ResumeRun } from './resume.js';
import { connectEngineWorld, type EngineBase, type EngineWorld } from './world.js';

/** The measurements of sections 1 and 2 on one server. */
export interface EngineResults {
  /** `dev server` or `cluster` */
  name: string;
  /** what it is, for the Machine table */
  description: string;
  overhead: OverheadRun[];
  resume: ResumeRun[];
  /** the 1-minute load average when its measurements began (the machine is shared) */
  loadAverage: number;
}

/** Sections 1 and 2 against the server `world` talks to. */
export async function benchEngine(world: EngineWorld, name: string, description: string): Promise<EngineResults> {
  const loadAverage = os.loadavg()[0]!;
  world.log(`1. engine overhead (${name})`);
  const overhead = await benchOverhead(world);
  world.log(`2. resume after SIGKILL (${name})`);
  const resume = await benchResume(world);
  return { name, description, overhead, resume, loadAverage };
}

/** Starts a cluster, runs sections 1 and 2 on it, stops it (also on error: with the run's resources). */
export async function benchEngineOnCluster(base: EngineBase): Promise<EngineResults> {
  const resources = base.resources.nested();
  // as root the embedded PostgreSQL runs as user postgres, which must be able to enter the run's directory
  if (process.getuid?.() === 0) chmodSync(base.root, 0o755);
  const started = Date.now();
  const cluster = await startCluster({
    dataDir: join(base.root, 'cluster'),
    basePort: await freeBasePort(0),
    workers: 0,
    ui: false,
    onProgress: (line) => base.log(`cluster: ${line}`),
  });
  resources.add(
    () => cluster.stop(),
    () => killCluster(cluster),
  );
  try {
    const startupMs = Date.now() - started;
    const description = await describeCluster(cluster, startupMs);
    const world = await connectEngineWorld(cluster.address, { ...base, resources });
    return await benchEngine(world, 'cluster', description);
  } finally {
    await resources.stop();
  }
}

/** The server's version, its processes and shards, and the PostgreSQL it persists to (version, durability settings). */
async function describeCluster(cluster: Cluster, startupMs: number): Promise<string> {
  const client = new pg.Client({ connectionString: cluster.databaseUrl });
  await client.connect();
  const setting = async (name: string) => (await client.query<Record<string, string>>(`SHOW ${name}`)).rows[0]![name];
  try {
    const [version, fsync, syncCommit] = [
      await setting('server_version'),
      await setting('fsync'),
      await setting('synchronous_commit'),
    ];
    const shards = (await client.query<{ n: string }>('SELECT count(*) AS n FROM shards')).rows[0]!.n;
    const server = execFileSync(temporalServerBin, ['--version'], { encoding: 'utf8' }).trim();
    return [
      `${server} (\`temporal-server\` built from go.temporal.io/server), ${SERVICES.join(', ')} services each in its own process, ${shards} history shards;`,
      `persistence and visibility on PostgreSQL ${version} (embedded, fsync ${fsync}, synchronous_commit ${syncCommit});`,
      `src/dev/cluster.ts on free loopback ports, started by the bench (ready in ${(startupMs / 1000).toFixed(0)} s)`,
    ].join(' ');
  } finally {
    await client.end();
  }
}

/** At process exit (the last resort): SIGKILL to the services and to the embedded PostgreSQL's postmaster. */
function killCluster(cluster: Cluster): void {
  const pids = SERVICES.map((s) => cluster.servicePid(s));
  try {
    pids.push(
      Number(readFileSync(join(cluster.dataDir, 'postgres', 'pgdata', 'postmaster.pid'), 'utf8').split('\n')[0]),
    );
  } catch {
    // not running
  }
  for (const pid of pids)
    try {
      if (pid) process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
}
