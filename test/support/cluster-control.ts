import { inject } from 'vitest';
import type { ServiceName } from '../../src/dev/cluster.js';

/**
 * The cluster of the vitest project `cluster` (test/cluster/global-setup.ts holds it): each call returns once the
 * operation is done (a started service serves again).
 */
export interface ClusterControl {
  /** SIGKILL (a crash) and wait for the exit */
  killService(name: ServiceName): Promise<void>;
  /** SIGTERM (graceful) and wait for the exit */
  stopService(name: ServiceName): Promise<void>;
  startService(name: ServiceName): Promise<void>;
  /** stop (graceful), then start */
  restartService(name: ServiceName): Promise<void>;
  /** the pid of each service's process (null while stopped) */
  pids(): Promise<Record<ServiceName, number | null>>;
  /** Temporal's own PostgreSQL (embedded): stop (fast shutdown: connections closed), start, or both */
  postgres: { stop(): Promise<void>; start(): Promise<void>; restart(): Promise<void> };
}

export function clusterControl(url = inject('clusterControlUrl')): ClusterControl {
  if (!url) throw new Error('no cluster here: run this file in the vitest project `cluster` (--project cluster)');
  const call = async <T>(path: string, method = 'POST'): Promise<T> => {
    const res = await fetch(`${url}/${path}`, { method });
    const text = await res.text();
    if (!res.ok) throw new Error(`cluster control ${method} /${path}: ${res.status} ${text}`);
    return JSON.parse(text) as T;
  };
  return {
    killService: (name) => call(`services/${name}/kill`),
    stopService: (name) => call(`services/${name}/stop`),
    startService: (name) => call(`services/${name}/start`),
    restartService: (name) => call(`services/${name}/restart`),
    pids: () => call('pids', 'GET'),
    postgres: {
      stop: () => call('postgres/stop'),
      start: () => call('postgres/start'),
      restart: () => call('postgres/restart'),
    },
  };
}
