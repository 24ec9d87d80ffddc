import { z } from 'zod';
import { DETECTION_DEFAULTS } from '../constants.js';
import { boundedDuration, durationSchema, envVarNameSchema, nameSchema, sqlIdentifier } from './primitives.js';
import { flagStoreSchema, logSourceSchema, serviceSchema } from './adapters.js';
import { sqliteTargetSchema } from './sqlite.js';
import { migrationTargetSchema } from './migration.js';
import { postgresTargetSchema } from './postgres.js';
import { cleanupTargetSchema } from './cleanup.js';

/** What a target is made of: flag stores, services, health checks, dual-write pairs; and notification channels. */
export const notificationChannelSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('log') }),
  z.strictObject({
    type: z.literal('webhook'),
    /** the worker reads the URL from this variable of its own environment: no secrets in files or history */
    urlEnv: envVarNameSchema,
    timeout: durationSchema.default('10s').transform(String),
  }),
]);

export const flagNamesSchema = z.strictObject({
  dualWriteEnabled: envVarNameSchema,
  strictMode: envVarNameSchema,
  legacyWriteBlocked: envVarNameSchema,
});

const columnsSchema = z
  .strictObject({
    objectId: sqlIdentifier,
    version: sqlIdentifier,
    content: sqlIdentifier,
    size: sqlIdentifier,
    sha256: sqlIdentifier.nullable(),
    createdAt: sqlIdentifier,
    updatedAt: sqlIdentifier,
    /** a 64-bit integer column holding the row fingerprint, kept by a trigger (`runbook dual-write prepare`) */
    fingerprint: sqlIdentifier,
  })
  .partial();

/** One side of a dual-write pair. */
export const objectStoreConfigSchema = z.discriminatedUnion('type', [
  z
    .strictObject({
      type: z.literal('postgres'),
      /** the worker's environment variable holding the connection string */
      urlEnv: envVarNameSchema.default('DATABASE_URL'),
      table: sqlIdentifier,
      columns: columnsSchema.optional(),
      /** the content column (text) holds `<sha[0:2]>/<sha>`, a content-addressed blob under `root`, instead of bytes */
      contentReference: z.strictObject({ root: z.string().min(1) }).optional(),
    })
    .refine((c) => !(c.contentReference && c.columns?.sha256 === null), {
      path: ['contentReference'],
      message: 'needs a sha256 column: columns.sha256 cannot be null (the digest cannot be computed from a reference)',
    }),
  z.strictObject({
    type: z.literal('sqlite'),
    path: z.string().min(1),
    table: sqlIdentifier,
    columns: columnsSchema.optional(),
  }),
  z.strictObject({ type: z.literal('object-store'), root: z.string().min(1) }),
]);
export type ObjectStoreConfig = z.infer<typeof objectStoreConfigSchema>;

/**
 * Where a dual-write run keeps its work files (diff, isolation report, plan, snapshot, artifacts) when they must
 * be readable from every worker host: tables in Postgres, created on first use.
 */
const workStoreSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('postgres'),
    /** the worker's environment variable holding the connection string */
    urlEnv: envVarNameSchema.default('DATABASE_URL'),
    /** prefix of the tables: <table>_files, <table>_chunks, <table>_blobs */
    table: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,40}$/, 'must be a lowercase SQL identifier of at most 41 characters')
      .default('dr_work'),
  }),
]);
export type WorkStoreConfig = z.infer<typeof workStoreSchema>;

const dualWriteObjectSchema = z.strictObject({
  /** the two stores; "a" is the primary (PostgreSQL in the seed), "b" the secondary (the object store) */
  a: objectStoreConfigSchema,
  b: objectStoreConfigSchema,
  labels: z
    .strictObject({ a: z.string().default('postgres'), b: z.string().default('store') })
    .default({ a: 'postgres', b: 'store' }),
  /** who wins a newest-wins tie */
  tieBreaker: z.enum(['a', 'b']).default('a'),
  /**
   * diff files, reports and snapshots go here, on the worker's host (share it between workers, or use workStore);
   * exactly one of workDir and workStore
   */
  workDir: z.string().min(1).optional(),
  /** work files in Postgres instead of workDir: every worker host reads what another wrote */
  workStore: workStoreSchema.optional(),
  severity: z
    .strictObject({
      /** this many differing objects or more is critical */
      criticalCount: z.number().int().min(1).default(1000),
      /** critical when the repair would overwrite a newer copy with an older one */
      criticalOnOlderOverwrite: z.boolean().default(true),
    })
    .default({ criticalCount: 1000, criticalOnOlderOverwrite: true }),
  /** on critical severity, dual writes are halted through this target's flag store first */
  haltTarget: nameSchema.optional(),
  batchSize: z.number().int().min(1).max(100_000).default(500),
  parallelism: z.number().int().min(1).max(64).default(2),
  /**
   * how detection compares the sides: `bisect` compares segment checksums computed by the stores (fast when
   * fingerprints are stored: `columns.fingerprint`, and always in the object store) and reads only the
   * fingerprints of segments that differ (of every segment while most differ); `merge` streams both sides in key
   * order (see BENCHMARKS.md)
   */
  detection: z
    .strictObject({
      mode: z.enum(['bisect', 'merge']).default('bisect'),
      pageSize: z.number().int().min(1).max(100_000).default(DETECTION_DEFAULTS.pageSize),
      /** rows per checksummed segment */
      segmentRows: z.number().int().min(1).max(1_000_000).default(DETECTION_DEFAULTS.segmentRows),
      /** segments per summary statement */
      windowSegments: z.number().int().min(1).max(100_000).default(DETECTION_DEFAULTS.windowSegments),
      /** share of a window's segments that differ above which the next windows compare fingerprint lists without checksums */
      listAbove: z.number().min(0).max(1).default(DETECTION_DEFAULTS.listAbove),
    })
    // absent: every field's own default
    .prefault({}),
  /**
   * how `dual-write-check` re-checks: `tracking: trigger` reads only the keys the stores' change tracking marked
   * changed since the last check (installed by `runbook dual-write track`; without it, or when it is not intact,
   * the check sums every segment as with `none` and says why); every `fullPassEvery` a re-check sums every
   * segment anyway; more than `maxChangedKeys` changed keys on a side are read by summing every segment too
   */
  incremental: z
    .strictObject({
      tracking: z.enum(['none', 'trigger']).default('none'),
      fullPassEvery: durationSchema.default('24h').transform(String),
      maxChangedKeys: z.number().int().min(1).max(10_000_000).default(50_000),
    })
    .prefault({}),
  /** pause after each batch to limit the load on production stores */
  batchPause: durationSchema.default('0s').transform(String),
  /** repairs larger than this run as child workflows over contiguous parts of the plan (any worker takes them) */
  partitionObjects: z.number().int().min(1).default(50_000),
  /** how many partitions run at once */
  partitionWindow: z.number().int().min(1).max(64).default(4),
  /** objects per repair activity inside a partition; a partition continues-as-new before its history grows large */
  chunkObjects: z.number().int().min(1).default(10_000),
});

const dualWriteSchema = dualWriteObjectSchema.superRefine((dw, ctx) => {
  if ((dw.workDir === undefined) === (dw.workStore === undefined))
    ctx.addIssue({
      code: 'custom',
      path: [dw.workDir === undefined ? 'workDir' : 'workStore'],
      message: 'give exactly one of workDir (a directory on the worker host) and workStore (Postgres)',
    });
});

export const targetSchema = z.strictObject({
  description: z.string().optional(),
  flags: z.strictObject({ store: flagStoreSchema, names: flagNamesSchema }).optional(),
  service: serviceSchema.optional(),
  dualWrite: dualWriteSchema.optional(),
  /** an application that lives on one SQLite file in WAL mode: backups, restores, milestone rollbacks, drills */
  sqlite: sqliteTargetSchema.optional(),
  /** a job-processing service migrating between data backends: phases, soak, replay, emergency ladder */
  migration: migrationTargetSchema.optional(),
  /** an application's Postgres database: pg_dump backups with signed manifests, restores by rename */
  postgres: postgresTargetSchema.optional(),
  /** test data to remove in one verified transaction: tables, predicates, relations (test-data-cleanup) */
  cleanup: cleanupTargetSchema.optional(),
  health: z
    .strictObject({
      http: z.strictObject({
        url: z.url(),
        expectStatus: z.number().int().default(200),
        expectBody: z.string().optional(),
        timeout: durationSchema.default('5s').transform(String),
        /** how long to keep polling for a healthy answer after a reload/restart */
        within: durationSchema.default('30s').transform(String),
      }),
      /** the service's own view of its flags: a JSON object of flag name to value */
      flagsUrl: z.url().optional(),
      logs: logSourceSchema.optional(),
      logPattern: z.string().default('dual_write_scheduled'),
      quietWindow: boundedDuration({ min: '1s' }).default('30s').transform(String),
    })
    .optional(),
});
