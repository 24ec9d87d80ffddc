import { z } from 'zod';
import { approvalPolicySchema } from './approval.js';
import { serviceSchema } from './adapters.js';
import {
  boundedDuration,
  durationSchema,
  envVarNameSchema,
  k8sNameSchema,
  nameSchema,
  sqlIdentifier,
} from './primitives.js';

// The `migration` section of a target: a job-processing service moving from one data backend to another
// (seed: backend-migration-dual-write-and-replay.md) — where its backend settings live, its phases and named
// rollback checkpoints, its soak thresholds, its jobs and outputs, and the emergency ladder.

/**
 * A configuration key as the store names it: `section.key` in an INI file (`data_backend.primary`), a variable
 * name in an env file, a `kubectl set env` variable or a compose service's environment, a data key of a ConfigMap.
 */
export const configKeySchema = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/, 'must be a configuration key (letters, digits, _ . -; INI: section.key)');

const composeServiceName = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'must be a compose service name');

/** Where a target's configuration lives; every store reads and writes any set of keys. */
export const configStoreSchema = z.discriminatedUnion('type', [
  /** an INI file; comments, order and untouched lines are kept byte for byte */
  z.strictObject({ type: z.literal('ini'), path: z.string().min(1) }),
  z.strictObject({ type: z.literal('env-file'), path: z.string().min(1) }),
  /** a ConfigMap's data keys (`kubectl get/patch configmap`) */
  z.strictObject({
    type: z.literal('kubernetes-configmap'),
    configMap: k8sNameSchema,
    namespace: k8sNameSchema,
    kubeconfigEnv: envVarNameSchema.optional(),
  }),
  /** a Deployment container's environment (`kubectl set env`) */
  z.strictObject({
    type: z.literal('kubernetes-env'),
    deployment: k8sNameSchema,
    namespace: k8sNameSchema,
    container: k8sNameSchema.optional(),
    kubeconfigEnv: envVarNameSchema.optional(),
  }),
  /** a compose file's `services.<service>.environment` (map or list form; comments kept) */
  z.strictObject({ type: z.literal('compose'), file: z.string().min(1), service: composeServiceName }),
]);
export type ConfigStoreConfig = z.infer<typeof configStoreSchema>;

/** key → value; null removes the key */
const configValuesSchema = z.record(configKeySchema, z.string().nullable());

/** The phases of the seed, in forward order. */
export const MIGRATION_PHASES = ['primary-only', 'dual-write', 'cut-over', 'new-only'] as const;
export type MigrationPhase = (typeof MIGRATION_PHASES)[number];

/** A named rollback target (seed: checkpoints 1.1–3.2): which keys go back to what, what restarts, what is checked. */
export const checkpointSchema = z.strictObject({
  description: z.string().optional(),
  /** the keys this checkpoint sets */
  set: configValuesSchema.default({}),
  /** put back the target's last known good configuration before `set` (seed 2.3, 3.2) */
  restoreLastKnownGood: z.boolean().default(false),
  /** services (names under `migration.services`) restarted afterwards; empty: all of them */
  restart: z.array(nameSchema).default([]),
  /** stop the services before changing the configuration, start them after (seed 2.3, 3.2: "stop all processing") */
  stopFirst: z.boolean().default(false),
  /** validation after the restart: health, and a processing-log line matching this pattern within `within` */
  validate: z
    .strictObject({
      logPattern: z.string().optional(),
      within: durationSchema.default('1m').transform(String),
    })
    .default({ within: '1m' }),
});
export type CheckpointConfig = z.infer<typeof checkpointSchema>;

/** Soak thresholds: read from the service's Prometheus metrics during the window after a forward step. */
export const soakSchema = z.strictObject({
  window: boundedDuration({ min: '1s' }).default('10m').transform(String),
  interval: boundedDuration({ min: '100ms' }).default('30s').transform(String),
  /** failed / (processed + failed) over the window so far, per backend */
  maxErrorRate: z.number().min(0).max(1).default(0.05),
  /** mean job latency per backend over the window so far */
  maxLatency: durationSchema.default('5s').transform(String),
  /** the rates are judged only once this many jobs were seen in the window */
  minJobs: z.number().int().min(0).default(1),
  /** consecutive unhealthy answers of the health endpoint that fail the soak */
  unhealthyLooks: z.number().int().min(1).default(2),
});

/** Where jobs live: the seed's spool directories, or a jobs table. */
export const jobSourceSchema = z.discriminatedUnion('type', [
  /** `<root>/jobs/{queue,processing,failed,completed}/<id>.json` */
  z.strictObject({ type: z.literal('spool'), root: z.string().min(1) }),
  /** a table with id, payload, status (queue|processing|failed|completed), attempts, started_at, updated_at, replay_key */
  z.strictObject({
    type: z.literal('postgres'),
    urlEnv: envVarNameSchema.default('DATABASE_URL'),
    table: sqlIdentifier,
  }),
]);
export type JobSourceConfig = z.infer<typeof jobSourceSchema>;

const levelPolicySchema = z.union([z.literal('automatic'), approvalPolicySchema]);

export const migrationTargetSchema = z.strictObject({
  description: z.string().optional(),
  /** where the backend settings live */
  config: configStoreSchema,
  /** the logical settings, by the key the store uses */
  keys: z.strictObject({
    primary: configKeySchema,
    dualWrite: configKeySchema,
    cutoverPercent: configKeySchema,
    /** written with the phase name when given (the seed's `migration_phase`) */
    phase: configKeySchema.optional(),
  }),
  /** the backends by role; `old` is the one the emergency paths force */
  backends: z.strictObject({ old: nameSchema, new: nameSchema }),
  /** the cut-over percentages a progressive cut-over steps through (seed: 25 → 50 → 100) */
  cutoverSteps: z.array(z.number().int().min(1).max(100)).default([25, 50, 100]),
  /** services that work the jobs, by name (any service adapter) */
  services: z.record(nameSchema, serviceSchema),
  /** the service's own endpoints */
  endpoints: z.strictObject({
    health: z.url(),
    metrics: z.url(),
    timeout: durationSchema.default('5s').transform(String),
    /** how long to wait for a healthy answer after a restart */
    within: durationSchema.default('30s').transform(String),
  }),
  soak: soakSchema.prefault({}),
  /** named rollback targets (seed 1.1–3.2) */
  checkpoints: z.record(z.string().regex(/^\d+\.\d+$/, 'must be a checkpoint number such as 2.1'), checkpointSchema),
  /** which checkpoint a failed soak of each forward phase rolls back through (default: the values before the step) */
  rollbackCheckpoints: z.partialRecord(z.enum(MIGRATION_PHASES), z.string()).default({}),
  /** plans (job lists referenced by digest), idempotency ledgers, quarantine records: private files */
  workDir: z.string().min(1),
  /** last known good snapshots of the configuration, one per target (private files) */
  lastKnownGood: z.strictObject({ dir: z.string().min(1) }),
  jobs: jobSourceSchema,
  /** processing logs (`job_processor_*.log`): a directory and file pattern */
  logs: z.strictObject({ dir: z.string().min(1), pattern: z.string().default('job_processor_*.log') }),
  outputs: z.strictObject({
    /** `output/run_<timestamp>/` directories */
    dir: z.string().min(1),
    /** a run directory is complete when it holds a file matching this pattern */
    summaryPattern: z.string().default('optimization_summary_*.txt'),
    /** corrupt outputs are moved here (never deleted) */
    quarantineDir: z.string().min(1),
    /** a copy of good outputs (`<backupDir>/run_<timestamp>/`), restored from when configured */
    backupDir: z.string().min(1).optional(),
  }),
  replay: z
    .strictObject({
      /** jobs in processing longer than this are stuck (seed: 60 minutes) */
      stuckAfter: durationSchema.default('60m').transform(String),
      /** jobs requeued per batch, batches in flight at once, pause between batches (workflow timer) */
      batch: z.number().int().min(1).max(10_000).default(10),
      concurrency: z.number().int().min(1).max(64).default(2),
      pace: durationSchema.default('2s').transform(String),
      /** marker file whose time is the default `since` for failed jobs (seed: migration_start.timestamp) */
      markerFile: z.string().optional(),
      /** after requeueing, wait this long at most for the replayed jobs to finish (before restoring an override) */
      drainTimeout: durationSchema.default('30m').transform(String),
    })
    .prefault({}),
  emergency: z
    .strictObject({
      /** level 3: the emergency configuration (default: old backend only, dual write off, cut-over 0) */
      set: configValuesSchema.optional(),
      /**
       * approval per level: `automatic`, or a policy of its own (levels 2 and 3 when absent: the environment's);
       * the input's approval may only tighten it
       */
      levels: z
        .strictObject({
          restart: levelPolicySchema.default('automatic'),
          lastKnownGood: levelPolicySchema.optional(),
          emergencyConfig: levelPolicySchema.optional(),
        })
        .prefault({}),
      /** how long each level waits for the service to become healthy */
      healthWithin: durationSchema.default('1m').transform(String),
    })
    .prefault({}),
});
export type MigrationTargetConfig = z.infer<typeof migrationTargetSchema>;
