import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import type { KeyPair } from '../activities/keys.js';
import { NativeConnection, Worker, bundleWorkflowCode, type WorkflowBundleOption } from '@temporalio/worker';
import { pino, type Logger } from 'pino';
import { createActivities } from '../activities/index.js';
import { attemptInterceptor } from './interceptors.js';
import type { CommandRunner } from '../activities/adapters/types.js';
import type { StoreFactory } from '../activities/stores/index.js';

export const workflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
export const workflowInterceptorModules = [
  fileURLToPath(new URL('../workflows/engine/interceptors.ts', import.meta.url)),
];

export interface WorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  environmentsDir: string;
  evidenceDir: string;
  log?: Logger;
  /** a prebuilt bundle (tests share one); otherwise the workflows are bundled at start */
  workflowBundle?: WorkflowBundleOption;
  runner?: CommandRunner;
  /** opens the stores of dual-write targets; the caller closes it after the worker stops */
  stores: StoreFactory;
  /** Temporal, for the activities that talk to other runs (target locks, repair partitions) */
  client: Client;
  /** the worker's Ed25519 key: signs the chain head of the evidence it writes */
  signingKey: KeyPair;
  maxConcurrentActivities?: number;
}

/** Bundles the workflow code once (webpack), for workers that start many times. */
export async function bundleWorkflows(): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath,
    workflowInterceptorModules,
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
  });
  return code;
}

/** The only place that wires activities to their dependencies. */
export async function createWorker(options: WorkerOptions): Promise<Worker> {
  const log = options.log ?? pino({ level: 'info' });
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    // a prebuilt bundle already contains the workflow interceptors (bundleWorkflows)
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath }),
    interceptors: {
      activity: [attemptInterceptor],
      ...(options.workflowBundle ? {} : { workflowModules: workflowInterceptorModules }),
    },
    activities: createActivities({
      environmentsDir: options.environmentsDir,
      evidenceDir: options.evidenceDir,
      log,
      runner: options.runner,
      stores: options.stores,
      client: options.client,
      signingKey: options.signingKey,
    }),
    // a crashed worker's sticky queue is abandoned quickly, so a new worker resumes its workflows fast
    stickyQueueScheduleToStartTimeout: '2s',
    shutdownGraceTime: '10s',
    // heartbeats carry resume cursors: send them at least every 2 s so a retry redoes little work
    maxHeartbeatThrottleInterval: '2s',
    ...(options.maxConcurrentActivities
      ? { maxConcurrentActivityTaskExecutions: options.maxConcurrentActivities }
      : {}),
  });
}
