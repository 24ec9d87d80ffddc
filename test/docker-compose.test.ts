// No Docker engine runs on the dev machines, so docker-compose.yml and the Dockerfile are checked here instead
// of being run: pinned images, and every name, port and default agreeing with src/shared/constants.ts. What the
// Temporal part shares with `npm run cluster` (versions, config, schema, namespace) is checked, and its one-shot
// jobs run, in test/docker-compose-cluster.test.ts.
import { describe, it, expect } from 'vitest';
import { existsSync } from 'node:fs';
import { posix } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { RUNBOOKS } from '../src/shared/runbooks.js';
import { exportedMetricNames, labelValuesOf, metricNamesOf } from './support/promql.js';
import {
  DEFAULT_METRICS_PORT,
  OUTCOMES,
  DEFAULT_NAMESPACE,
  DEFAULT_TASK_QUEUE,
  DEFAULT_TEMPORAL_ADDRESS,
} from '../src/shared/constants.js';
import {
  compose,
  dependsOn,
  dockerEnv,
  environmentOf,
  hostPort,
  inContainer,
  interpolate,
  isPinned,
  of,
  portsOf,
  read,
  root,
  service,
  serviceByImage,
  services,
  servicesByImage,
  startsAfter,
  stages,
  volumesOf,
  WORKER_ENV_VARS,
  workdir,
} from './support/compose.js';

const temporalName = 'temporal';
const temporal = service(temporalName);
const [postgresName, postgres] = serviceByImage('postgres');
const [, ui] = serviceByImage('temporalio/ui');
const worker = service('worker');
const workerEnv = environmentOf(worker);
const defaultTemporalPort = hostPort(DEFAULT_TEMPORAL_ADDRESS).port;

describe('docker-compose.yml', () => {
  it('pins every image to a version tag', () => {
    for (const [name, service] of Object.entries(services)) {
      if (service.image === undefined) {
        expect(service.build, `${name} has neither image nor build`).toBeDefined();
        continue;
      }
      expect(isPinned(interpolate(service.image)), `${name}: ${service.image}`).toBe(true);
    }
  });

  it('configures the worker with the task queue, namespace and metrics port the code uses', () => {
    expect(worker.build).toBeDefined();
    expect(workerEnv.TEMPORAL_TASK_QUEUE).toBe(DEFAULT_TASK_QUEUE);
    expect(workerEnv.TEMPORAL_NAMESPACE).toBe(DEFAULT_NAMESPACE);
    expect(Number(workerEnv.METRICS_PORT)).toBe(DEFAULT_METRICS_PORT);
  });

  it('points the worker at the temporal service on the port it publishes', () => {
    const address = hostPort(workerEnv.TEMPORAL_ADDRESS ?? '');
    expect(address.host).toBe(temporalName);
    expect(address.port).toBe(defaultTemporalPort);
    const published = portsOf(temporal);
    expect(published.map((p) => p.target)).toContain(address.port);
    // the host CLI connects to localhost with DEFAULT_TEMPORAL_ADDRESS: same port outside and inside
    expect(published).toContainEqual({ published: defaultTemporalPort, target: defaultTemporalPort });
    expect(dependsOn(worker)).toHaveProperty(temporalName);
  });

  it('points the Web UI at the same Temporal address', () => {
    expect(environmentOf(ui).TEMPORAL_ADDRESS).toBe(workerEnv.TEMPORAL_ADDRESS);
    expect(dependsOn(ui)).toHaveProperty(temporalName);
  });

  it('publishes no host port on the worker, so `--scale worker=N` never clashes', () => {
    expect(portsOf(worker)).toEqual([]);
    expect(worker.container_name).toBeUndefined();
    expect(of('EXPOSE').flatMap((i) => i.args.split(/\s+/))).toContain(String(DEFAULT_METRICS_PORT));
  });

  it('stores Temporal in the postgres service with the same credentials on every side', () => {
    const postgresEnv = environmentOf(postgres);
    const servers = servicesByImage('temporalio/server');
    expect(servers.length).toBeGreaterThan(0);
    for (const [name, server] of servers) {
      const env = environmentOf(server);
      expect(env.POSTGRES_SEEDS, name).toBe(postgresName);
      expect(env.DB_PORT, name).toBe('5432');
      expect(env.POSTGRES_USER, name).toBe(postgresEnv.POSTGRES_USER);
      expect(env.POSTGRES_PWD, name).toBe(postgresEnv.POSTGRES_PASSWORD);
      // the password comes from the shell or .env, with a default only for local use
      const raw = parse(read('docker-compose.yml'), { merge: true }) as {
        services: Record<string, { environment: Record<string, string> }>;
      };
      expect(raw.services[name]?.environment.POSTGRES_PWD).toMatch(/^\$\{POSTGRES_PASSWORD(:-[^}]*)?\}$/);
      expect(startsAfter(name, postgresName), `${name} starts after ${postgresName}`).toBe(true);
    }
    const schemaEnv = environmentOf(service('temporal-schema'));
    expect([schemaEnv.SQL_HOST, schemaEnv.SQL_USER, schemaEnv.SQL_PASSWORD]).toEqual([
      postgresName,
      postgresEnv.POSTGRES_USER,
      postgresEnv.POSTGRES_PASSWORD,
    ]);
    expect(dependsOn(service('temporal-schema'))[postgresName]).toBe('service_healthy');
  });

  it("gives the workers the Postgres work store in the postgres service's own database", () => {
    const postgresEnv = environmentOf(postgres);
    const url = new URL(workerEnv.WORK_STORE_DATABASE_URL ?? '');
    expect(url.protocol).toBe('postgres:');
    expect(url.hostname).toBe(postgresName);
    expect([decodeURIComponent(url.username), decodeURIComponent(url.password)]).toEqual([
      postgresEnv.POSTGRES_USER,
      postgresEnv.POSTGRES_PASSWORD,
    ]);
    // created by the postgres image on first start; not one of Temporal's databases
    expect(url.pathname).toBe(`/${postgresEnv.POSTGRES_DB}`);
    expect(['temporal', 'temporal_visibility']).not.toContain(postgresEnv.POSTGRES_DB);
  });
});

describe('Dockerfile', () => {
  it('pins every base image', () => {
    const bases = stages.map((stage) => stage[0]?.args.split(/\s+/)[0] ?? '');
    expect(bases.length).toBeGreaterThan(0);
    for (const base of bases) expect(isPinned(base), base).toBe(true);
  });

  it('has a default for every variable the worker reads, and no stray ones', () => {
    // NODE_ENV and UV_THREADPOOL_SIZE are the runtime's (libuv threads for job-replay's concurrent fdatasyncs)
    const { NODE_ENV, UV_THREADPOOL_SIZE, ...rest } = dockerEnv;
    expect(NODE_ENV).toBe('production');
    expect(UV_THREADPOOL_SIZE).toBe('64');
    expect(Object.keys(rest).sort()).toEqual([...WORKER_ENV_VARS].sort());
  });

  it('agrees with the constants and with the worker service of docker-compose.yml', () => {
    expect(dockerEnv.TEMPORAL_NAMESPACE).toBe(DEFAULT_NAMESPACE);
    expect(dockerEnv.TEMPORAL_TASK_QUEUE).toBe(DEFAULT_TASK_QUEUE);
    expect(Number(dockerEnv.METRICS_PORT)).toBe(DEFAULT_METRICS_PORT);
    expect(hostPort(dockerEnv.TEMPORAL_ADDRESS ?? '').port).toBe(defaultTemporalPort);
    for (const name of WORKER_ENV_VARS) {
      if (dockerEnv[name] === undefined || workerEnv[name] === undefined) continue;
      expect(workerEnv[name], name).toBe(dockerEnv[name]);
    }
  });

  it('mounts ./environments and ./evidence where the worker looks for them', () => {
    const mounts = volumesOf(worker);
    for (const [name, source] of [
      ['ENVIRONMENTS_DIR', './environments'],
      ['EVIDENCE_DIR', './evidence'],
    ] as const) {
      const target = inContainer(workerEnv[name] ?? dockerEnv[name] ?? '');
      expect(mounts.find((m) => m.target === target)?.source, `${name} ${target}`).toBe(source);
    }
    const copied = of('COPY').map((i) => i.args.split(/\s+/).filter((a) => !a.startsWith('--')));
    expect(copied).toContainEqual([
      'environments',
      `./${posix.relative(workdir, inContainer(dockerEnv.ENVIRONMENTS_DIR ?? ''))}`,
    ]);
  });

  it('keeps the evidence key and the dual-write work files in named volumes every worker replica shares', () => {
    const mounts = volumesOf(worker);
    const keyDir = posix.dirname(inContainer(workerEnv.WORKER_KEY_FILE ?? dockerEnv.WORKER_KEY_FILE ?? ''));
    expect(mounts.find((m) => m.target === keyDir)?.source).toBe('worker-keys');
    expect(mounts.find((m) => m.target === '/app/work')?.source).toBe('work');
    expect(Object.keys(compose.volumes ?? {})).toEqual(expect.arrayContaining(['worker-keys', 'work']));
    expect(of('RUN').some((i) => i.args.includes('chmod 700') && i.args.includes('/app/keys'))).toBe(true);
    // created once, before any replica starts, in the same volume at the same path
    const keyJob = service('worker-key');
    expect(volumesOf(keyJob).find((m) => m.target === keyDir)?.source).toBe('worker-keys');
    expect(environmentOf(keyJob).WORKER_KEY_FILE).toBe(workerEnv.WORKER_KEY_FILE);
    expect([keyJob.command ?? []].flat().join(' ')).toMatch(/keys show --worker \|\| .*keys init --worker$/);
    expect(dependsOn(worker)['worker-key']).toBe('service_completed_successfully');
  });

  it('runs the worker entry point as the unprivileged node user, with a metrics healthcheck', () => {
    expect(JSON.parse(of('CMD').at(-1)?.args ?? 'null')).toEqual(['npx', 'tsx', 'src/worker/main.ts']);
    expect(of('USER').at(-1)?.args).toBe('node');
    const healthcheck = of('HEALTHCHECK').at(-1)?.args ?? '';
    expect(healthcheck).toContain('fetch(');
    expect(healthcheck).toContain('METRICS_PORT');
    for (const copied of ['package.json', 'package-lock.json', 'tsconfig.json', 'src', 'environments']) {
      expect(
        of('COPY').some((i) => i.args.split(/\s+/).includes(copied)),
        copied,
      ).toBe(true);
    }
    expect(existsSync(`${root}/package-lock.json`)).toBe(true);
  });

  it('starts the same entry point as the `worker` npm script', () => {
    const pkg = z
      .object({ scripts: z.record(z.string(), z.string()).default({}), dependencies: z.record(z.string(), z.string()) })
      .parse(JSON.parse(read('package.json')));
    // `npm ci --omit=dev` must keep tsx, which runs the TypeScript sources
    expect(pkg.dependencies).toHaveProperty('tsx');
    if (pkg.scripts.worker !== undefined) expect(pkg.scripts.worker).toContain('src/worker/main.ts');
  });
});

describe('monitoring: Prometheus rules and the Grafana dashboard, provisioned by docker-compose.yml', () => {
  const exported = exportedMetricNames([`${root}/src/workflows`, `${root}/src/activities`]);
  const rules = (
    parse(read('monitoring/prometheus/rules/durable-runbooks.yml')) as {
      groups: Array<{ rules: Array<{ alert: string; expr: string; labels?: Record<string, string> }> }>;
    }
  ).groups.flatMap((g) => g.rules);
  const dashboard = JSON.parse(read('monitoring/grafana/dashboards/durable-runbooks.json')) as {
    uid: string;
    panels: Array<{ title: string; datasource: { uid: string }; targets: Array<{ expr: string }> }>;
  };
  const exprs = [
    ...rules.map((r) => [`rule ${r.alert}`, r.expr] as const),
    ...dashboard.panels.flatMap((p) => p.targets.map((t) => [`panel ${p.title}`, t.expr] as const)),
  ];

  it('uses only metric names, outcomes and runbook names the code exports', () => {
    expect(exported).toContain('dual_write_inconsistency_detected');
    for (const [where, expr] of exprs) {
      const names = metricNamesOf(expr);
      expect(names.length, where).toBeGreaterThan(0);
      for (const name of names) expect(exported, `${where}: ${name}`).toContain(name);
      for (const outcome of labelValuesOf(expr, 'outcome')) expect(OUTCOMES, `${where}`).toContain(outcome);
      for (const runbook of labelValuesOf(expr, 'runbook')) expect(Object.keys(RUNBOOKS), where).toContain(runbook);
    }
  });

  it("alerts on the seed's gauge above 0, runs waiting for approval and failed runs", () => {
    const byName = Object.fromEntries(rules.map((r) => [r.alert, r]));
    expect(byName.DualWriteInconsistencyDetected).toMatchObject({
      expr: 'dual_write_inconsistency_detected > 0',
      labels: { severity: 'critical' },
    });
    expect(metricNamesOf(byName.RunbookWaitingForApproval!.expr).sort()).toEqual([
      'runbook_approval_waits_ended',
      'runbook_approval_waits_started',
    ]);
    expect(labelValuesOf(byName.RunbookRunFailed!.expr, 'outcome')).toContain('failed');
  });

  it('mounts the rules where prometheus.yml loads them and scrapes every worker replica on its metrics port', () => {
    const prometheus = services.prometheus!;
    expect(isPinned(prometheus.image ?? '')).toBe(true);
    const config = parse(read('monitoring/prometheus/prometheus.yml')) as {
      rule_files: string[];
      scrape_configs: Array<{ dns_sd_configs?: Array<{ names: string[]; type: string; port: number }> }>;
    };
    const mounts = volumesOf(prometheus);
    const rulesDir = mounts.find((m) => m.source === './monitoring/prometheus/rules')?.target;
    expect(config.rule_files).toContain(`${rulesDir}/*.yml`);
    const configFile = [prometheus.command ?? []]
      .flat()
      .find((a) => a.startsWith('--config.file='))
      ?.split('=')[1];
    expect(mounts.find((m) => m.target === configFile)?.source).toBe('./monitoring/prometheus/prometheus.yml');
    // every replica of the worker service, found by the service's DNS name inside the network
    expect(config.scrape_configs.flatMap((c) => c.dns_sd_configs ?? [])).toContainEqual({
      names: ['worker'],
      type: 'A',
      port: Number(workerEnv.METRICS_PORT),
      refresh_interval: '30s',
    });
  });

  it('provisions the Prometheus datasource and the dashboard into Grafana', () => {
    const grafana = services.grafana!;
    expect(isPinned(grafana.image ?? '')).toBe(true);
    const mounts = volumesOf(grafana);
    expect(mounts.find((m) => m.source === './monitoring/grafana/provisioning')?.target).toBe(
      '/etc/grafana/provisioning',
    );
    const provider = parse(read('monitoring/grafana/provisioning/dashboards/durable-runbooks.yml')) as {
      providers: Array<{ options: { path: string } }>;
    };
    expect(mounts.find((m) => m.source === './monitoring/grafana/dashboards')?.target).toBe(
      provider.providers[0]!.options.path,
    );
    const datasource = (
      parse(read('monitoring/grafana/provisioning/datasources/prometheus.yml')) as {
        datasources: Array<{ uid: string; url: string }>;
      }
    ).datasources[0]!;
    expect(datasource.url).toBe(`http://prometheus:${portsOf(services.prometheus!)[0]!.target}`);
    for (const panel of dashboard.panels) expect(panel.datasource.uid, panel.title).toBe(datasource.uid);
  });
});
