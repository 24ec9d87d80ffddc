// docker-compose.yml and the Dockerfile, parsed for the tests that check them against the code
// (test/docker-compose.test.ts) and against the cluster of `npm run cluster` (test/docker-compose-cluster.test.ts).
import { expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { z } from 'zod';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const read = (file: string): string => readFileSync(`${root}/${file}`, 'utf8');

/** The environment variables src/worker/main.ts reads. */
export const WORKER_ENV_VARS = [
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
  healthcheck: z.looseObject({ test: stringList }).optional(),
});
export type Service = z.infer<typeof serviceSchema>;
const composeSchema = z.looseObject({
  services: z.record(z.string(), serviceSchema),
  volumes: z.record(z.string(), z.unknown()).optional(),
});

// `merge: true`: the file shares settings through YAML anchors and `<<` merge keys, as docker compose reads them
export const compose = composeSchema.parse(parse(read('docker-compose.yml'), { merge: true }));
export const services = compose.services;

/** Resolves compose interpolation the way `docker compose` does with nothing set in the shell: the defaults. */
export function interpolate(value: string): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g, (match, _name, op, arg) => {
    if (match === '$$') return '$';
    if (op === ':-' || op === '-') return String(arg);
    throw new Error(`${match} has no default: the stack would not start without it`);
  });
}

export function environmentOf(service: Service): Record<string, string> {
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
export function portsOf(service: Service): { published: number | undefined; target: number }[] {
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

export function volumesOf(service: Service): { source: string | undefined; target: string }[] {
  return (service.volumes ?? []).map((volume) => {
    if (typeof volume === 'object') return { source: volume.source, target: volume.target };
    // [source:]target[:mode]
    const [first = '', second] = volume.split(':');
    return second === undefined ? { source: undefined, target: first } : { source: first, target: second };
  });
}

export function dependsOn(service: Service): Record<string, string | undefined> {
  const deps = service.depends_on ?? [];
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((name) => [name, undefined]));
  return Object.fromEntries(Object.entries(deps).map(([name, dep]) => [name, dep.condition]));
}

export function hostPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  expect(colon, `${address} must be host:port`).toBeGreaterThan(0);
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
}

/** The one service whose image starts with the given repository. */
export function serviceByImage(repository: string): [string, Service] {
  const found = Object.entries(services).filter(([, s]) => s.image?.split(':')[0] === repository);
  expect(
    found.map(([name]) => name),
    `exactly one service runs ${repository}`,
  ).toHaveLength(1);
  return found[0] as [string, Service];
}

/** An image reference is pinned when it has a digest or a version tag of at least major.minor. */
export function isPinned(image: string): boolean {
  if (/@sha256:[0-9a-f]{64}$/.test(image)) return true;
  const lastSegment = image.split('/').at(-1) ?? '';
  const colon = lastSegment.indexOf(':');
  if (colon < 0) return false;
  const tag = lastSegment.slice(colon + 1);
  return tag !== 'latest' && /^v?\d+\.\d+/.test(tag);
}

// ---------------------------------------------------------------------------------------------------------
// Dockerfile

export interface Instruction {
  keyword: string;
  args: string;
}

export function parseDockerfile(text: string): Instruction[][] {
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

export function parseEnv(args: string): Record<string, string> {
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

export const stages = parseDockerfile(read('Dockerfile'));
const finalStage = stages.at(-1) ?? [];
export const of = (keyword: string): Instruction[] => finalStage.filter((i) => i.keyword === keyword);
export const dockerEnv: Record<string, string> = Object.assign({}, ...of('ENV').map((i) => parseEnv(i.args)));
export const workdir = of('WORKDIR').at(-1)?.args ?? '/';
export const inContainer = (path: string): string => posix.resolve(workdir, path);

/** The service called `name`. */
export function service(name: string): Service {
  const found = services[name];
  if (!found) throw new Error(`docker-compose.yml has no \`${name}\` service`);
  return found;
}

/** The services whose image is `repository` (any tag). */
export function servicesByImage(repository: string): [string, Service][] {
  return Object.entries(services).filter(([, s]) => s.image?.split(':')[0] === repository);
}

/** The tag of an image reference. */
export const tagOf = (image: string | undefined): string => (image ?? '').split(':')[1] ?? '';

/** The shell command of a healthcheck, CMD or CMD-SHELL. */
export function healthcheckCommand(s: Service): string {
  const test = [s.healthcheck?.test ?? []].flat();
  return (test[0] === 'CMD' || test[0] === 'CMD-SHELL' ? test.slice(1) : test).join(' ');
}

/** Whether service `name` starts only after `on` (directly or through the services it depends on). */
export function startsAfter(name: string, on: string, seen = new Set<string>()): boolean {
  if (seen.has(name)) return false;
  seen.add(name);
  return Object.keys(dependsOn(service(name))).some((dep) => dep === on || startsAfter(dep, on, seen));
}
