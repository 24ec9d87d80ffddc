import { resolve } from 'node:path';
import { z } from 'zod';
import {
  DEFAULT_METRICS_PORT,
  DEFAULT_NAMESPACE,
  DEFAULT_TASK_QUEUE,
  DEFAULT_TEMPORAL_ADDRESS,
} from '../shared/constants.js';
import { describeZodError } from '../shared/schemas.js';
import { workerKeyPath } from '../activities/keys.js';

/** The worker's (and the CLI's) configuration, from its environment variables. */
const configSchema = z.object({
  TEMPORAL_ADDRESS: z.string().min(1).default(DEFAULT_TEMPORAL_ADDRESS),
  TEMPORAL_NAMESPACE: z.string().min(1).default(DEFAULT_NAMESPACE),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default(DEFAULT_TASK_QUEUE),
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(DEFAULT_METRICS_PORT),
  ENVIRONMENTS_DIR: z.string().default('environments'),
  EVIDENCE_DIR: z.string().default('evidence'),
  /** activities one worker runs at once (default: the SDK's); lower it to spread work over more workers */
  MAX_CONCURRENT_ACTIVITIES: z.coerce.number().int().min(1).optional(),
  /** the worker's evidence signing key (PEM); created on first start when missing */
  WORKER_KEY_FILE: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

export interface RuntimeConfig {
  address: string;
  namespace: string;
  taskQueue: string;
  metricsPort: number;
  environmentsDir: string;
  evidenceDir: string;
  logLevel: string;
  maxConcurrentActivities?: number;
  workerKeyFile: string;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): RuntimeConfig {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) throw new Error(`invalid worker configuration: ${describeZodError(parsed.error)}`);
  const c = parsed.data;
  return {
    address: c.TEMPORAL_ADDRESS,
    namespace: c.TEMPORAL_NAMESPACE,
    taskQueue: c.TEMPORAL_TASK_QUEUE,
    metricsPort: c.METRICS_PORT,
    environmentsDir: resolve(c.ENVIRONMENTS_DIR),
    evidenceDir: resolve(c.EVIDENCE_DIR),
    logLevel: c.LOG_LEVEL,
    maxConcurrentActivities: c.MAX_CONCURRENT_ACTIVITIES,
    workerKeyFile: resolve(workerKeyPath(env)),
  };
}
