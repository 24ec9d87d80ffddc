/**
 * The worker process of section 2 (resume.ts spawns and SIGKILLs it): createBenchWorker (worker.ts).
 * Env: TEMPORAL_ADDRESS, TEMPORAL_TASK_QUEUE, WORKFLOW_BUNDLE_PATH, EVIDENCE_DIR, ENVIRONMENTS_DIR.
 * Prints one JSON line, a ReadyMessage, on stdout when it starts polling.
 */
import { performance } from 'node:perf_hooks';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { installQuietRuntime } from '../support/runtime.js';
import { createBenchWorker, type ReadyMessage } from './worker.js';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`bench worker: ${name} is not set`);
  return value;
}

async function main(): Promise<void> {
  const loadedMs = performance.now();
  installQuietRuntime();
  const connection = await NativeConnection.connect({ address: required('TEMPORAL_ADDRESS') });
  const clientConnection = await Connection.connect({ address: required('TEMPORAL_ADDRESS') });
  const connectedMs = performance.now();
  const worker = await createBenchWorker({
    connection,
    client: new Client({ connection: clientConnection }),
    taskQueue: required('TEMPORAL_TASK_QUEUE'),
    bundlePath: required('WORKFLOW_BUNDLE_PATH'),
    environmentsDir: process.env.ENVIRONMENTS_DIR ?? 'environments',
    evidenceDir: required('EVIDENCE_DIR'),
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
