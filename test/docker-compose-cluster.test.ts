// docker-compose.yml runs the cluster `npm run cluster` proves here (src/dev/cluster.ts): the same server and UI
// versions (package.json config), the same config templates (config/temporal/), the same schema steps, shard count,
// namespace retention and search attributes. No Docker engine runs here, so the server renders its config with each
// container's environment in the container's file layout, and the stack's one-shot jobs (docker/*.sh) run against
// the suite's real Postgres and Temporal.
import { describe, it, expect, inject } from 'vitest';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { Connection } from '@temporalio/client';
import pg from 'pg';
import { parse } from 'yaml';
import { z } from 'zod';
import { CLUSTER_HISTORY_SHARDS, CLUSTER_RETENTION_DAYS, SERVICES, temporalServerBin } from '../src/dev/cluster.js';
import { endpointOf, schemaDir, TEMPORAL_DATABASES, withDatabase } from '../src/dev/cluster-schema.js';
import { temporalCli } from '../src/dev/temporal-server.js';
import { DEFAULT_NAMESPACE, SEARCH_ATTRIBUTES } from '../src/shared/constants.js';
import {
  dependsOn,
  environmentOf,
  healthcheckCommand,
  hostPort,
  portsOf,
  read,
  root,
  service,
  servicesByImage,
  startsAfter,
  tagOf,
  volumesOf,
  type Service,
} from './support/compose.js';

const run = promisify(execFile);
const pkg = z
  .object({ config: z.object({ temporalServerVersion: z.string(), temporalUiServerVersion: z.string() }) })
  .parse(JSON.parse(read('package.json')));
const serverVersion = pkg.config.temporalServerVersion.replace(/^v/, '');
const uiVersion = pkg.config.temporalUiServerVersion.replace(/^v/, '');

const servers = servicesByImage('temporalio/server');
const serviceOf = (s: Service): string => environmentOf(s).SERVICES ?? '';
const server = (name: (typeof SERVICES)[number]): [string, Service] => {
  const found = servers.find(([, s]) => serviceOf(s) === name);
  if (!found) throw new Error(`no temporalio/server service runs ${name}`);
  return found;
};
const worker = service('worker');
const workerEnv = environmentOf(worker);
const schemaJob = service('temporal-schema');
const namespaceJob = service('temporal-namespace');
/** what the official image's entrypoint.sh and start-temporal.sh read, besides the config template */
const IMAGE_SCRIPT_VARS = ['SERVICES', 'TEMPORAL_CONFIG_DIR', 'BIND_ON_IP', 'TEMPORAL_BROADCAST_ADDRESS'];
/** the image's working directory, where `temporal-server` resolves its config dir */
const TEMPORAL_HOME = '/etc/temporal';

/** The variables a sprig config template reads with `env "NAME"`. */
const templateVars = (file: string): string[] => [...read(file).matchAll(/env "([A-Z0-9_]+)"/g)].map((m) => m[1]!);

/** `<dir>/versioned`'s newest version (v1.18 → "1.18"), the one update-schema ends at. */
function newestVersion(dir: string): string {
  const versions = readdirSync(join(dir, 'versioned')).map((v) => v.replace(/^v/, '').split('.').map(Number));
  versions.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  return versions.at(-1)!.join('.');
}

/** Runs one of docker/*.sh as its compose service does: its environment, on top of `env`. */
async function runJob(job: Service, env: Record<string, string>): Promise<string> {
  const entrypoint = [job.entrypoint ?? []].flat();
  const script = volumesOf(job).find((m) => m.target === entrypoint.at(-1))?.source ?? '';
  const { stdout, stderr } = await run('sh', [join(root, script)], {
    // HOME: the temporal CLI reads its (optional) config file from there, as in the container
    env: { PATH: `${dirname(temporalCli)}:${process.env.PATH}`, HOME: tmpdir(), ...environmentOf(job), ...env },
  });
  return stdout + stderr;
}

/** The parts of a rendered server config these tests read. */
interface RenderedConfig {
  persistence: {
    numHistoryShards: number;
    visibilityStore: string;
    datastores: Record<string, { sql: Record<string, unknown> }>;
  };
  services: Record<string, { rpc: { bindOnIP: string; grpcPort: number; membershipPort: number } }>;
  global: { membership: { broadcastAddress: string }; metrics: { prometheus: { listenAddress: string } } };
  clusterMetadata: { clusterInformation: Record<string, { rpcAddress: string }> };
  dynamicConfigClient: { filepath: string };
}

/**
 * `temporal-server --env docker render-config` as the image's start-temporal.sh runs it: in a copy of the container's
 * file layout (the service's ./ mounts below /etc/temporal), with the service's environment and the broadcast
 * address entrypoint.sh sets for BIND_ON_IP 0.0.0.0.
 */
async function renderServerConfig(s: Service): Promise<RenderedConfig> {
  const fsRoot = mkdtempSync(join(tmpdir(), 'compose-temporal-'));
  try {
    for (const { source, target } of volumesOf(s)) {
      if (!source?.startsWith('./')) continue;
      mkdirSync(dirname(join(fsRoot, target)), { recursive: true });
      cpSync(join(root, source), join(fsRoot, target));
    }
    const env = { ...environmentOf(s), TEMPORAL_BROADCAST_ADDRESS: '172.20.0.5' };
    const { stdout } = await run(temporalServerBin, ['--env', 'docker', 'render-config'], {
      cwd: join(fsRoot, TEMPORAL_HOME),
      env,
    });
    const config = parse(stdout) as RenderedConfig;
    const dynamic = posix.resolve(TEMPORAL_HOME, config.dynamicConfigClient.filepath);
    expect(existsSync(join(fsRoot, dynamic)), `dynamic config ${dynamic} is mounted`).toBe(true);
    return config;
  } finally {
    rmSync(fsRoot, { recursive: true, force: true });
  }
}

describe('docker-compose.yml: the cluster of `npm run cluster`', () => {
  it('runs the pinned Temporal server, one service per container, and the admin tools of the same version', () => {
    expect(servers.map(([, s]) => tagOf(s.image))).toEqual(servers.map(() => serverVersion));
    expect(servers.map(([, s]) => serviceOf(s)).sort()).toEqual([...SERVICES].sort());
    for (const [name, s] of servicesByImage('temporalio/admin-tools'))
      expect(tagOf(s.image).split('-')[0], `${name}: schema and CLI of the server's version`).toBe(serverVersion);
    // matching first: on a new database the first service writes the cluster metadata (src/dev/cluster.ts)
    const [matchingName] = server('matching');
    for (const [name, s] of servers.filter(([n]) => n !== matchingName))
      expect(dependsOn(s)[matchingName], name).toBe('service_healthy');
  });

  it("mounts the repository's server template where the image's start script loads it", () => {
    for (const [name, s] of servers) {
      const env = environmentOf(s);
      // no entrypoint or command: the image's entrypoint.sh and start-temporal.sh (`--env docker`) run
      expect([s.entrypoint, s.command], name).toEqual([undefined, undefined]);
      const mounts = volumesOf(s);
      const configFile = posix.join(TEMPORAL_HOME, env.TEMPORAL_CONFIG_DIR ?? 'config', 'docker.yaml');
      expect(mounts.find((m) => m.target === configFile)?.source, name).toBe('./config/temporal/server.yaml');
      const dynamic = posix.resolve(TEMPORAL_HOME, env.DYNAMIC_CONFIG_FILE_PATH ?? '');
      expect(mounts.find((m) => m.target === dynamic)?.source, name).toBe('./config/temporal/dynamicconfig.yaml');
      const known = [...templateVars('config/temporal/server.yaml'), ...IMAGE_SCRIPT_VARS];
      for (const variable of Object.keys(env)) expect(known, `${name}: ${variable} is read`).toContain(variable);
    }
  });

  it('renders, in each container, the shards, databases, ports and addresses the cluster and the stack use', async () => {
    expect(existsSync(temporalServerBin), `${temporalServerBin}: run npm run setup`).toBe(true);
    const frontendAddress = hostPort(workerEnv.TEMPORAL_ADDRESS ?? '');
    const [frontendName, frontend] = server('frontend');
    expect(frontendAddress.host).toBe(frontendName);
    const temporalTargets = (
      parse(read('monitoring/prometheus/prometheus.yml')) as {
        scrape_configs: Array<{ job_name: string; static_configs?: Array<{ targets: string[] }> }>;
      }
    ).scrape_configs
      .filter((c) => c.job_name === 'temporal')
      .flatMap((c) => c.static_configs?.flatMap((t) => t.targets) ?? []);
    for (const [name, s] of servers) {
      const env = environmentOf(s);
      const config = await renderServerConfig(s);
      const { persistence, services: rpc } = config;
      expect(persistence.numHistoryShards, name).toBe(CLUSTER_HISTORY_SHARDS);
      expect(persistence.visibilityStore).toBe('visibility');
      for (const [store, database] of [
        ['default', TEMPORAL_DATABASES.temporal],
        ['visibility', TEMPORAL_DATABASES.visibility],
      ] as const)
        expect(persistence.datastores[store]?.sql, `${name} ${store}`).toMatchObject({
          pluginName: 'postgres12',
          databaseName: database,
          connectAddr: `${env.POSTGRES_SEEDS}:${env.DB_PORT}`,
          user: environmentOf(service('postgresql')).POSTGRES_USER,
        });
      expect(Object.keys(rpc).sort()).toEqual([...SERVICES].sort());
      for (const svc of SERVICES) expect(rpc[svc]?.rpc.bindOnIP, `${name} ${svc}`).toBe('0.0.0.0');
      expect(config.global.membership.broadcastAddress).toBe('172.20.0.5');
      expect(rpc.frontend?.rpc.grpcPort).toBe(frontendAddress.port);
      expect(config.clusterMetadata.clusterInformation.active?.rpcAddress).toBe(workerEnv.TEMPORAL_ADDRESS);
      expect(temporalTargets).toContain(`${name}:${config.global.metrics.prometheus.listenAddress.split(':')[1]}`);
      // the healthcheck probes the port this service listens on (the worker service serves no gRPC)
      const own = rpc[serviceOf(s)]!.rpc;
      const probe =
        serviceOf(s) === 'frontend'
          ? `--address 127.0.0.1:${own.grpcPort} `
          : `/dev/tcp/127.0.0.1/${serviceOf(s) === 'worker' ? own.membershipPort : own.grpcPort}`;
      expect(healthcheckCommand(s), name).toContain(probe);
      expect(healthcheckCommand(s).split(probe)[1], name).toMatch(/^(\| grep -q SERVING)?$/);
    }
    expect(portsOf(frontend)).toContainEqual({ published: frontendAddress.port, target: frontendAddress.port });
  });

  it('runs the Web UI server the cluster builds, on the same template', () => {
    const [[name, ui] = []] = servicesByImage('temporalio/ui');
    expect(tagOf(ui?.image)).toBe(uiVersion);
    // where the image's start-ui-server.sh has `ui-server --env docker start` read it (rendered by the UI server)
    expect(volumesOf(ui!).find((m) => m.target === '/home/ui-server/config/docker.yaml')?.source).toBe(
      './config/temporal/ui.yaml',
    );
    const env = environmentOf(ui!);
    for (const variable of Object.keys(env))
      expect(templateVars('config/temporal/ui.yaml'), `${name}: ${variable}`).toContain(variable);
    expect(env.TEMPORAL_ADDRESS).toBe(workerEnv.TEMPORAL_ADDRESS);
    expect(env.TEMPORAL_UI_HOST).toBe('0.0.0.0');
    expect(env.TEMPORAL_DEFAULT_NAMESPACE).toBe(DEFAULT_NAMESPACE);
    const [port] = portsOf(ui!);
    expect(port?.target).toBe(Number(env.TEMPORAL_UI_PORT));
    expect(env.TEMPORAL_CORS_ORIGINS?.split(',')).toContain(`http://localhost:${port?.published}`);
  });
});

describe("docker-compose.yml's one-shot jobs, run here as the stack runs them", () => {
  it('temporal-schema: the databases and the schema version the cluster sets up, before any server starts', async () => {
    // the admin tools' copy of the server's schema, laid out as the one setup.mjs copies here
    const schemaEnv = environmentOf(schemaJob);
    expect(schemaEnv.SCHEMA_DIR).toBe('/etc/temporal/schema/postgresql/v12');
    expect(schemaDir.endsWith(join('postgresql', 'v12'))).toBe(true);
    expect(schemaEnv.SQL_PLUGIN).toBe('postgres12');
    // neither it nor the servers rename the databases: both use the defaults, the cluster's names
    for (const s of [schemaJob, ...servers.map(([, s]) => s)])
      expect(Object.keys(environmentOf(s))).not.toEqual(expect.arrayContaining(['DBNAME']));
    const script = read('docker/temporal-schema.sh');
    expect(/^DBNAME="\$\{DBNAME:-(\w+)\}"$/m.exec(script)?.[1]).toBe(TEMPORAL_DATABASES.temporal);
    expect(/^VISIBILITY_DBNAME="\$\{VISIBILITY_DBNAME:-(\w+)\}"$/m.exec(script)?.[1]).toBe(
      TEMPORAL_DATABASES.visibility,
    );
    expect(dependsOn(server('matching')[1])['temporal-schema']).toBe('service_completed_successfully');
    for (const [name] of servers) expect(startsAfter(name, 'temporal-schema'), name).toBe(true);

    // run it twice against the suite's Postgres, on databases of its own
    const url = inject('databaseUrl');
    const e = endpointOf(url);
    const suffix = randomBytes(4).toString('hex');
    const names = { DBNAME: `compose_t_${suffix}`, VISIBILITY_DBNAME: `compose_v_${suffix}` };
    const env = {
      ...names,
      SQL_HOST: e.host,
      SQL_PORT: String(e.port),
      SQL_USER: e.user,
      SQL_PASSWORD: e.password,
      SCHEMA_DIR: schemaDir,
    };
    try {
      const first = await runJob(schemaJob, env);
      const second = await runJob(schemaJob, env);
      for (const [variable, dir] of [
        ['DBNAME', 'temporal'],
        ['VISIBILITY_DBNAME', 'visibility'],
      ] as const) {
        const database = names[variable];
        expect(first).toContain(`database ${database} created`);
        expect(second).not.toContain(`database ${database} created`);
        const client = new pg.Client({ connectionString: withDatabase(url, database) });
        await client.connect();
        try {
          const { rows } = await client.query<{ curr_version: string }>('SELECT curr_version FROM schema_version');
          expect(rows.map((r) => r.curr_version)).toEqual([newestVersion(join(schemaDir, dir))]);
        } finally {
          await client.end();
        }
      }
    } finally {
      const admin = new pg.Client({ connectionString: withDatabase(url, 'postgres') });
      await admin.connect();
      for (const database of Object.values(names)) await admin.query(`DROP DATABASE IF EXISTS ${database}`);
      await admin.end();
    }
  });

  it('temporal-namespace: 30-day retention and SEARCH_ATTRIBUTES as Keyword, before any worker starts', async () => {
    const env = environmentOf(namespaceJob);
    expect(env.NAMESPACE).toBe(DEFAULT_NAMESPACE);
    expect(env.NAMESPACE).toBe(workerEnv.TEMPORAL_NAMESPACE);
    expect(Number(env.RETENTION_DAYS)).toBe(CLUSTER_RETENTION_DAYS);
    expect(env.SEARCH_ATTRIBUTES?.split(',').sort()).toEqual([...SEARCH_ATTRIBUTES].sort());
    expect(env.TEMPORAL_ADDRESS).toBe(workerEnv.TEMPORAL_ADDRESS);
    expect(dependsOn(namespaceJob)[server('frontend')[0]]).toBe('service_healthy');
    expect(dependsOn(worker)['temporal-namespace']).toBe('service_completed_successfully');

    // run it twice against the suite's Temporal, on a namespace of its own
    const address = inject('temporalAddress');
    const namespace = `compose-${randomBytes(4).toString('hex')}`;
    const first = await runJob(namespaceJob, { TEMPORAL_ADDRESS: address, NAMESPACE: namespace });
    const second = await runJob(namespaceJob, { TEMPORAL_ADDRESS: address, NAMESPACE: namespace });
    expect(first).toContain(`namespace ${namespace} registered (retention ${CLUSTER_RETENTION_DAYS} days)`);
    for (const name of SEARCH_ATTRIBUTES) expect(first).toContain(`search attribute ${name} added`);
    expect(second).not.toMatch(/registered|added|changed/);
    const connection = await Connection.connect({ address });
    try {
      const described = await connection.workflowService.describeNamespace({ namespace });
      expect(Number(described.config?.workflowExecutionRetentionTtl?.seconds)).toBe(CLUSTER_RETENTION_DAYS * 86_400);
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
      for (const name of SEARCH_ATTRIBUTES) expect(customAttributes?.[name], name).toBe(2); // INDEXED_VALUE_TYPE_KEYWORD
    } finally {
      await connection.close();
    }
  });
});
