import { NativeConnection, Runtime, makeTelemetryFilterString, DefaultLogger } from '@temporalio/worker';
import { pino } from 'pino';
import { loadConfig } from './config.js';
import { createWorker } from './worker.js';
import { Client, Connection } from '@temporalio/client';
import { StoreFactory } from '../activities/stores/index.js';
import { readOrCreatePrivateKey } from '../activities/keys.js';

/** `npm run worker`: one worker on TEMPORAL_TASK_QUEUE, Prometheus metrics on METRICS_PORT, graceful stop. */
async function main(): Promise<void> {
  const config = loadConfig();
  const log = pino({ level: config.logLevel });
  Runtime.install({
    logger: new DefaultLogger('WARN'),
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) },
      // SDK runtime metrics and the runbook metrics the workflows emit (runbook_*), on one endpoint
      metrics: { prometheus: { bindAddress: `0.0.0.0:${config.metricsPort}` } },
    },
  });
  const connection = await NativeConnection.connect({ address: config.address });
  const clientConnection = await Connection.connect({ address: config.address });
  const client = new Client({ connection: clientConnection, namespace: config.namespace });
  const signingKey = await readOrCreatePrivateKey(config.workerKeyFile, (pair) =>
    log.warn(
      { keyFile: config.workerKeyFile, keyId: pair.keyId, publicKey: pair.publicKey },
      "created this worker's evidence signing key: give auditors its public key (evidence.workerKeys)",
    ),
  );
  // WORKFLOW_BUNDLE_PATH: a prebuilt bundle (tests); otherwise the workflows are bundled at start
  const bundlePath = process.env.WORKFLOW_BUNDLE_PATH;
  const stores = new StoreFactory();
  const worker = await createWorker({
    connection,
    ...config,
    log,
    stores,
    client,
    signingKey,
    workflowBundle: bundlePath ? { codePath: bundlePath } : undefined,
  });
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down: finishing in-flight tasks');
      worker.shutdown();
    });
  }
  log.info(
    {
      address: config.address,
      namespace: config.namespace,
      taskQueue: config.taskQueue,
      metrics: `http://localhost:${config.metricsPort}/metrics`,
      evidenceKey: signingKey.keyId,
    },
    'worker ready',
  );
  try {
    await worker.run();
  } finally {
    await stores.close();
    await clientConnection.close();
    await connection.close();
  }
  log.info('worker stopped');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
