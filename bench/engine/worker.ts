/**
 * The worker of sections 1 and 2: the bench workflows from a prebuilt bundle, the bench activities and the engine
 * activities (runs take their target's lock: requestTargetLock needs the client), with the settings and interceptors
 * of createWorker (src/worker/worker.ts). In process for the engine overhead, in worker-child.ts for the resume.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { Worker, type NativeConnection } from '@temporalio/worker';
import { pino } from 'pino';
import { createEngineActivities } from '../../src/activities/engine.js';
import { generateKeyPair } from '../../src/activities/keys.js';
import { createRunActivities } from '../../src/activities/runs.js';
import { repoRoot } from '../../src/dev/temporal-server.js';
import { attemptInterceptor } from '../../src/worker/interceptors.js';
import { createBenchActivities } from './activities.js';
import { SHUTDOWN_GRACE_TIME, STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT } from './settings.js';

/** the environment and target every bench workflow runs on (one no-op target: the engine takes its lock) */
export const BENCH_ENVIRONMENT = 'bench';
export const BENCH_TARGET = 'noop';

/** worker-child.ts's one line on stdout when it polls */
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

export const isReadyLine = (line: string): boolean => line.startsWith('{"event":"ready"');

export interface BenchWorkerOptions {
  connection: NativeConnection;
  client: Client;
  taskQueue: string;
  /** bench/engine/workflows.ts, bundled once */
  bundlePath: string;
  environmentsDir: string;
  evidenceDir: string;
}

export function createBenchWorker(o: BenchWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: o.connection,
    namespace: 'default',
    taskQueue: o.taskQueue,
    workflowBundle: { codePath: o.bundlePath },
    activities: {
      ...createEngineActivities({
        environmentsDir: o.environmentsDir,
        evidenceDir: o.evidenceDir,
        log: pino({ level: 'warn' }, pino.destination(2)),
        signingKey: generateKeyPair(),
      }),
      ...createRunActivities({ environmentsDir: o.environmentsDir, client: o.client }),
      ...createBenchActivities(),
    },
    // the interceptors of createWorker; its workflow interceptor modules are in the bundle
    interceptors: { activity: [attemptInterceptor] },
    stickyQueueScheduleToStartTimeout: STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT,
    shutdownGraceTime: SHUTDOWN_GRACE_TIME,
  });
}

/** The sticky timeout the bench uses must still be the one src/worker/worker.ts gives real workers. */
export function checkStickyTimeout(): string | undefined {
  const source = readFileSync(join(repoRoot, 'src', 'worker', 'worker.ts'), 'utf8');
  const match = /stickyQueueScheduleToStartTimeout:\s*['"]([^'"]+)['"]/.exec(source);
  if (match?.[1] === STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT) return undefined;
  return `src/worker/worker.ts sets stickyQueueScheduleToStartTimeout ${match ? `'${match[1]}'` : '(not found)'}, the bench uses '${STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT}'`;
}
