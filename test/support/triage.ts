import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { RunbookResult } from '../../src/shared/types.js';
import type { Harness, DemoTarget } from './harness.js';

/** The seed's decision matrix for the demo target `web` (environments/demo.yaml has the same rows). */
export const seedMatrix = (extra: { healthTarget?: string; metricsUrl?: string } = {}) => [
  {
    symptom: 'errors-500',
    description: 'Requests failing (500 errors)',
    urgency: 'immediate',
    ...(extra.healthTarget && { measure: { type: 'health', target: extra.healthTarget } }),
    chain: [
      { runbook: 'feature-flag-rollback', input: { mode: 'disable-strict-mode' } },
      { runbook: 'feature-flag-rollback', input: { mode: 'disable-dual-write' } },
    ],
  },
  {
    symptom: 'latency-2x',
    description: 'Performance degraded (>2x latency)',
    urgency: 'high',
    ...(extra.metricsUrl && {
      measure: { type: 'metric', url: extra.metricsUrl, metric: 'http_latency_ratio_to_baseline', above: 2 },
    }),
    chain: [{ runbook: 'feature-flag-rollback', input: { mode: 'disable-dual-write' } }],
  },
  {
    symptom: 'dual-write-failed-strict-off',
    description: 'Logs show dual_write_failed (strict OFF)',
    urgency: 'low',
    note: 'expected: monitor, then investigate',
    chain: [],
  },
];

/** A tiny HTTP server answering /health and /metrics as told (a failing endpoint, an exporter). */
export async function fakeEndpoint(
  h: Harness,
  answer: { health?: number; metrics?: string },
): Promise<{ url: string; answer: typeof answer }> {
  const server: Server = createServer((req, res) => {
    if (req.url === '/health') {
      res.writeHead(answer.health ?? 200).end(answer.health && answer.health >= 400 ? 'broken' : 'healthy');
    } else if (req.url === '/metrics') res.writeHead(200, { 'content-type': 'text/plain' }).end(answer.metrics ?? '');
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  h.onClose(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, answer };
}

/** A demo target `web` whose environment has the seed matrix (and `edge`, a target with only a health check). */
export async function triageTarget(
  h: Harness,
  o: { edgeHealth?: string; metricsUrl?: string; webHealth?: Record<string, unknown>; alerts?: unknown[] } = {},
): Promise<DemoTarget> {
  return h.demoTarget({
    ...(o.webHealth && { health: o.webHealth }),
    sections: {
      triage: {
        matrix: seedMatrix({ ...(o.edgeHealth && { healthTarget: 'edge' }), metricsUrl: o.metricsUrl }),
        ...(o.alerts && { alerts: o.alerts }),
      },
    },
    ...(o.edgeHealth && { targets: { edge: { health: { http: { url: o.edgeHealth, within: '0s' } } } } }),
  });
}

/** How a run ended when it failed: the failure's type and the run's result (the engine's details). */
export async function failureOf(
  handle: WorkflowHandle,
): Promise<{ type?: string; message: string; result: RunbookResult }> {
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof WorkflowFailedError) || !(err.cause instanceof ApplicationFailure))
    throw new Error(`expected a failed run, got ${String(err)}`);
  return {
    type: err.cause.type ?? undefined,
    message: err.cause.message,
    result: err.cause.details?.[0] as RunbookResult,
  };
}
