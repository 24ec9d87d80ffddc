/**
 * The bench's worker process (bench/run.ts spawns and SIGKILLs it): the bench workflows from a prebuilt bundle,
 * the bench activities and the engine activities, with the worker settings and interceptors of src/worker/worker.ts.
 * Env: TEMPORAL_ADDRESS, TEMPORAL_TASK_QUEUE, WORKFLOW_BUNDLE_PATH, EVIDENCE_DIR, ENVIRONMENTS_DIR.
 * Prints one JSON line `{"event":"ready",...}` on stdout when it starts polling.
 */
import { performance } from 'node:perf_hooks';
import { DefaultLogger, NativeConnection, Runtime, Worker, makeTelemetryFilterString } from '@temporalio/worker';
import { pino } from 'pino';
import { Client, Connection } from '@temporalio/client';
import { createEngineActivities } from '../src/activities/engine.js';
import { generateKeyPair } from '../src/activities/keys.js';
import { createRunActivities } from '../src/activities/runs.js';
import { attemptInterceptor } from '../src/worker/interceptors.js';
import { createBenchActivities } from './activities.js';
import { SHUTDOWN_GRACE_TIME, STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT } from './settings.js';

export interface ReadyMessage {
  event: 'ready';
  pid: number;
  /** ms from process start to this module running (Node, tsx, imports) */
  loadedMs: number;
  /** ms from process start to the connection being up */
  connectedMs: number;
  /** ms from process start to Worker.create done (about to poll) */
  createdMs: number;
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`bench worker: ${name} is not set`);
  return value;
}

async function main(): Promise<void> {
  const loadedMs = performance.now();
  Runtime.install({
    logger: new DefaultLogger('WARN'),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) } },
  });
  const connection = await NativeConnection.connect({ address: required('TEMPORAL_ADDRESS') });
  const clientConnection = await Connection.connect({ address: required('TEMPORAL_ADDRESS') });
  const environmentsDir = process.env.ENVIRONMENTS_DIR ?? 'environments';
  const connectedMs = performance.now();
  const log = pino({ level: 'warn' }, pino.destination(2));
  const worker = await Worker.create({
    connection,
    namespace: 'default',
    taskQueue: required('TEMPORAL_TASK_QUEUE'),
    workflowBundle: { codePath: required('WORKFLOW_BUNDLE_PATH') },
    activities: {
      ...createEngineActivities({
        environmentsDir,
        evidenceDir: required('EVIDENCE_DIR'),
        log,
        signingKey: generateKeyPair(),
      }),
      ...createRunActivities({ environmentsDir, client: new Client({ connection: clientConnection }) }),
      ...createBenchActivities(),
    },
    // the interceptors of createWorker (src/worker/worker.ts); its workflow interceptor modules are in the bundle
    interceptors: { activity: [attemptInterceptor] },
    stickyQueueScheduleToStartTimeout: STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT,
    shutdownGraceTime: SHUTDOWN_GRACE_TIME,
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => worker.shutdown());
  const ready: ReadyMessage = { event: 'ready', pid: process.pid, loadedMs, connectedMs, createdMs: performance.now() };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
  try {
    await worker.run();
  } finally {
    await clientConnection.close();
    await connection.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
