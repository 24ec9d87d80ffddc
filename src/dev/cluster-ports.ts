/**
 * The loopback ports of a cluster (src/dev/cluster.ts), all derived from one base port so that two clusters (or a
 * cluster and the test suite, whose servers take ports the OS picks from its ephemeral range, 32768 and up) never
 * clash: the base and the 99 ports above it, plus base + 1000 for the Web UI.
 */
import { createServer } from 'node:net';

/** The default base: the frontend on 7233, where `runbook`, `npm run worker` and `temporal` look by default. */
export const DEFAULT_BASE_PORT = 7233;
export const MAX_CLUSTER_WORKERS = 50;

export const SERVICES = ['frontend', 'history', 'matching', 'worker'] as const;
/** A Temporal server service; each runs as its own process. */
export type ServiceName = (typeof SERVICES)[number];

export interface ClusterPorts {
  base: number;
  /** gRPC of each service (the frontend's is the cluster's address) */
  grpc: Record<ServiceName, number>;
  /** the frontend's HTTP API */
  frontendHttp: number;
  /** ringpop membership of each service */
  membership: Record<ServiceName, number>;
  /** Prometheus metrics of each service process (/metrics) */
  metrics: Record<ServiceName, number>;
  /** the embedded PostgreSQL (unused with DATABASE_URL) */
  postgres: number;
  /** the Web UI */
  ui: number;
  /** METRICS_PORT of worker process `index` (0-based) */
  workerMetrics(index: number): number;
}

const perService = (first: number): Record<ServiceName, number> =>
  Object.fromEntries(SERVICES.map((s, i) => [s, first + i])) as Record<ServiceName, number>;

/**
 * base+0 frontend gRPC, +1 frontend HTTP, +2..+4 history, matching, worker gRPC, +10..+13 membership, +20..+23
 * service metrics, +30 Postgres, +50.. worker metrics, +1000 UI (8233 for the default base, as the dev server's).
 */
export function clusterPorts(base: number, uiPort?: number): ClusterPorts {
  if (!Number.isInteger(base) || base < 1024 || base + 1000 > 65535)
    throw new Error(`base port ${base} must be an integer from 1024 to 64535`);
  return {
    base,
    grpc: { frontend: base, history: base + 2, matching: base + 3, worker: base + 4 },
    frontendHttp: base + 1,
    membership: perService(base + 10),
    metrics: perService(base + 20),
    postgres: base + 30,
    ui: uiPort ?? base + 1000,
    workerMetrics(index) {
      if (index < 0 || index >= MAX_CLUSTER_WORKERS)
        throw new Error(`worker index ${index}: a cluster runs at most ${MAX_CLUSTER_WORKERS} workers`);
      return base + 50 + index;
    },
  };
}

/** Every port a cluster with `workers` worker processes listens on. */
export function allPorts(p: ClusterPorts, workers: number, options: { ui: boolean; postgres: boolean }): number[] {
  return [
    ...Object.values(p.grpc),
    p.frontendHttp,
    ...Object.values(p.membership),
    ...Object.values(p.metrics),
    ...(options.postgres ? [p.postgres] : []),
    ...(options.ui ? [p.ui] : []),
    ...Array.from({ length: workers }, (_, i) => p.workerMetrics(i)),
  ];
}

/** Whether nothing listens on 127.0.0.1:port (binding it succeeds). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** The ports of `ports` something already listens on. */
export async function busyPorts(ports: number[]): Promise<number[]> {
  const free = await Promise.all(ports.map(portIsFree));
  return ports.filter((_, i) => !free[i]);
}

/**
 * A base port for a cluster of tests or benchmarks: a random multiple of 100 from 20000 to 30900 (below the OS's
 * ephemeral range, so freePort() never hands out one of its ports) whose whole range is free.
 */
export async function freeBasePort(workers = 2): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + 100 * Math.floor(Math.random() * 110);
    const ports = allPorts(clusterPorts(base), workers, { ui: true, postgres: true });
    if ((await busyPorts(ports)).length === 0) return base;
  }
  throw new Error('no free range of cluster ports from 20000 to 31000');
}
