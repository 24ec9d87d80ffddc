// No Docker engine runs on the dev machines, so docker-compose.yml and the Dockerfile are checked here instead
// of being run: pinned images, and every name, port and default agreeing with src/shared/constants.ts.
import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
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
  SEARCH_ATTRIBUTES,
} from '../src/shared/constants.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const read = (file: string): string => readFileSync(`${root}/${file}`, 'utf8');

/** The environment variables src/worker/main.ts reads. */
const WORKER_ENV_VARS = [
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_TASK_QUEUE',
  'METRICS_PORT',
  'ENVIRONMENTS_DIR',
  'EVIDENCE_DIR',
  'WORKER_KEY_FILE',
  'LOG_LEVEL',
] as const;

// ---------------------------------------------------------------------------------------------------------
// docker-compose.yml

const stringList = z.union([z.string(), z.array(z.string())]);
const serviceSchema = z.looseObject({
  image: z.string().optional(),
  build: z.union([z.string(), z.looseObject({ context: z.string().optional() })]).optional(),
  environment: z
    .union([z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])), z.array(z.string())])
    .optional(),
  ports: z
    .array(
      z.union([
        z.string(),
        z.number(),
        z.looseObject({ target: z.number(), published: z.union([z.string(), z.number()]).optional() }),
      ]),
    )
    .optional(),
  volumes: z
    .array(z.union([z.string(), z.looseObject({ source: z.string().optional(), target: z.string() })]))
    .optional(),
  depends_on: z
    .union([z.array(z.string()), z.record(z.string(), z.looseObject({ condition: z.string().optional() }))])
    .optional(),
  entrypoint: stringList.optional(),
  command: stringList.optional(),
});
type Service = z.infer<typeof serviceSchema>;
const composeSchema = z.looseObject({
  services: z.record(z.string(), serviceSchema),
  volumes: z.record(z.string(), z.unknown()).optional(),
});

const compose = composeSchema.parse(parse(read('docker-compose.yml')));
const services = compose.services;

/** Resolves compose interpolation the way `docker compose` does with nothing set in the shell: the defaults. */
function interpolate(value: string): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g, (match, _name, op, arg) => {
    if (match === '$$') return '$';
    if (op === ':-' || op === '-') return String(arg);
    throw new Error(`${match} has no default: the stack would not start without it`);
  });
}

function environmentOf(service: Service): Record<string, string> {
  const env = service.environment ?? {};
  const entries = Array.isArray(env)
    ? env.map((line): [string, string] => {
        const eq = line.indexOf('=');
        return eq < 0 ? [line, ''] : [line.slice(0, eq), line.slice(eq + 1)];
      })
    : Object.entries(env).map(([key, value]): [string, string] => [key, value === null ? '' : String(value)]);
  return Object.fromEntries(entries.map(([key, value]) => [key, interpolate(value)]));
}

/** Published ports as { published, target } pairs (container port = target). */
function portsOf(service: Service): { published: number | undefined; target: number }[] {
  return (service.ports ?? []).map((port) => {
    if (typeof port === 'object') {
      return { published: port.published === undefined ? undefined : Number(port.published), target: port.target };
    }
    // [ip:][published:]target[/protocol]
    const parts = String(port)
      .replace(/\/(tcp|udp)$/, '')
      .split(':');
    const target = Number(parts.at(-1));
    const published = parts.length > 1 ? Number(parts.at(-2)) : undefined;
    return { published, target };
  });
}

function volumesOf(service: Service): { source: string | undefined; target: string }[] {
  return (service.volumes ?? []).map((volume) => {
    if (typeof volume === 'object') return { source: volume.source, target: volume.target };
    // [source:]target[:mode]
    const [first = '', second] = volume.split(':');
    return second === undefined ? { source: undefined, target: first } : { source: first, target: second };
  });
}

function dependsOn(service: Service): Record<string, string | undefined> {
  const deps = service.depends_on ?? [];
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((name) => [name, undefined]));
  return Object.fromEntries(Object.entries(deps).map(([name, dep]) => [name, dep.condition]));
}

function hostPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  expect(colon, `${address} must be host:port`).toBeGreaterThan(0);
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
}

/** The one service whose image starts with the given repository. */
function serviceByImage(repository: string): [string, Service] {
  const found = Object.entries(services).filter(([, s]) => s.image?.split(':')[0] === repository);
  expect(
    found.map(([name]) => name),
    `exactly one service runs ${repository}`,
  ).toHaveLength(1);
  return found[0] as [string, Service];
}

/** An image reference is pinned when it has a digest or a version tag of at least major.minor. */
function isPinned(image: string): boolean {
  if (/@sha256:[0-9a-f]{64}$/.test(image)) return true;
  const lastSegment = image.split('/').at(-1) ?? '';
  const colon = lastSegment.indexOf(':');
  if (colon < 0) return false;
  const tag = lastSegment.slice(colon + 1);
  return tag !== 'latest' && /^v?\d+\.\d+/.test(tag);
}

// ---------------------------------------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  keyword: string;
  args: string;
}

function parseDockerfile(text: string): Instruction[][] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (pending !== '' && line.startsWith('#')) continue; // comments inside a continued instruction
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    logical.push(pending + line);
    pending = '';
  }
  if (pending) logical.push(pending.trim());
  const stages: Instruction[][] = [];
  for (const line of logical) {
    const match = /^(\S+)\s*(.*)$/.exec(line);
    if (!match) continue;
    const instruction = { keyword: (match[1] ?? '').toUpperCase(), args: match[2] ?? '' };
    if (instruction.keyword === 'FROM') stages.push([]);
    stages.at(-1)?.push(instruction);
  }
  return stages;
}

function parseEnv(args: string): Record<string, string> {
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(args)) {
    const [key = '', ...rest] = args.split(/\s+/);
    return { [key]: rest.join(' ') }; // legacy `ENV KEY value`
  }
  const env: Record<string, string> = {};
  for (const match of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=(?:"([^"]*)"|'([^']*)'|(\S*))/g)) {
    env[match[1] ?? ''] = match[2] ?? match[3] ?? match[4] ?? '';
  }
  return env;
}

const stages = parseDockerfile(read('Dockerfile'));
const finalStage = stages.at(-1) ?? [];
const of = (keyword: string): Instruction[] => finalStage.filter((i) => i.keyword === keyword);
const dockerEnv: Record<string, string> = Object.assign({}, ...of('ENV').map((i) => parseEnv(i.args)));
const workdir = of('WORKDIR').at(-1)?.args ?? '/';
const inContainer = (path: string): string => posix.resolve(workdir, path);

// ---------------------------------------------------------------------------------------------------------

const [temporalName, temporal] = serviceByImage('temporalio/auto-setup');
const [, postgres] = serviceByImage('postgres');
const [, admin] = serviceByImage('temporalio/admin-tools');
const [, ui] = serviceByImage('temporalio/ui');
const worker = services.worker;
if (!worker) throw new Error('docker-compose.yml has no `worker` service');
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

  it('registers exactly SEARCH_ATTRIBUTES as Keyword in the worker namespace before the worker starts', () => {
    const script = [admin.entrypoint ?? [], admin.command ?? []].flat().join('\n');
    const creates = script.split('\n').flatMap((line) => {
      const at = line.indexOf('search-attribute create');
      return at < 0 ? [] : [line.slice(at)];
    });
    const registered: string[] = [];
    for (const create of creates) {
      const names = [...create.matchAll(/--name[ =](\S+)/g)].map((m) => m[1] ?? '');
      const types = [...create.matchAll(/--type[ =](\S+)/g)].map((m) => m[1]);
      expect(types, create).toEqual(names.map(() => 'Keyword'));
      expect(/--namespace[ =](\S+)/.exec(create)?.[1], create).toBe(workerEnv.TEMPORAL_NAMESPACE);
      expect(/--address[ =](\S+)/.exec(create)?.[1] ?? environmentOf(admin).TEMPORAL_ADDRESS, create).toBe(
        workerEnv.TEMPORAL_ADDRESS,
      );
      registered.push(...names);
    }
    expect([...registered].sort()).toEqual([...SEARCH_ATTRIBUTES].sort());
    expect(dependsOn(worker)[Object.entries(services).find(([, s]) => s === admin)?.[0] ?? '']).toBe(
      'service_completed_successfully',
    );
  });

  it('publishes the worker metrics port', () => {
    expect(portsOf(worker)).toContainEqual({ published: DEFAULT_METRICS_PORT, target: Number(workerEnv.METRICS_PORT) });
    expect(of('EXPOSE').flatMap((i) => i.args.split(/\s+/))).toContain(String(DEFAULT_METRICS_PORT));
  });

  it('stores Temporal in the postgres service with the same credentials on both sides', () => {
    const [postgresName] = Object.entries(services).find(([, s]) => s === postgres) ?? [];
    const temporalEnv = environmentOf(temporal);
    const postgresEnv = environmentOf(postgres);
    expect(temporalEnv.POSTGRES_SEEDS).toBe(postgresName);
    expect(temporalEnv.DB).toBe('postgres12');
    expect(temporalEnv.DB_PORT).toBe('5432');
    expect(temporalEnv.POSTGRES_USER).toBe(postgresEnv.POSTGRES_USER);
    expect(temporalEnv.POSTGRES_PWD).toBe(postgresEnv.POSTGRES_PASSWORD);
    // the password comes from the shell or .env, with a default only for local use
    const raw = parse(read('docker-compose.yml')) as {
      services: Record<string, { environment: Record<string, string> }>;
    };
    expect(raw.services[temporalName]?.environment.POSTGRES_PWD).toMatch(/^\$\{POSTGRES_PASSWORD(:-[^}]*)?\}$/);
    expect(dependsOn(temporal)[postgresName ?? '']).toBe('service_healthy');
  });
});

describe('Dockerfile', () => {
  it('pins every base image', () => {
    const bases = stages.map((stage) => stage[0]?.args.split(/\s+/)[0] ?? '');
    expect(bases.length).toBeGreaterThan(0);
    for (const base of bases) expect(isPinned(base), base).toBe(true);
  });

  it('has a default for every variable the worker reads, and no stray ones', () => {
    const { NODE_ENV, ...rest } = dockerEnv;
    expect(NODE_ENV).toBe('production');
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

  it('mounts the rules where prometheus.yml loads them and scrapes the worker on its metrics port', () => {
    const prometheus = services.prometheus!;
    expect(isPinned(prometheus.image ?? '')).toBe(true);
    const config = parse(read('monitoring/prometheus/prometheus.yml')) as {
      rule_files: string[];
      scrape_configs: Array<{ static_configs: Array<{ targets: string[] }> }>;
    };
    const mounts = volumesOf(prometheus);
    const rulesDir = mounts.find((m) => m.source === './monitoring/prometheus/rules')?.target;
    expect(config.rule_files).toContain(`${rulesDir}/*.yml`);
    const configFile = [prometheus.command ?? []]
      .flat()
      .find((a) => a.startsWith('--config.file='))
      ?.split('=')[1];
    expect(mounts.find((m) => m.target === configFile)?.source).toBe('./monitoring/prometheus/prometheus.yml');
    expect(config.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets))).toContain(
      `worker:${workerEnv.METRICS_PORT}`,
    );
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
