import { z } from 'zod';
import { serviceSchema } from './adapters.js';
import { baseInput } from './inputs.js';
import { backupRunInput } from './sqlite-inputs.js';
import { boundedDuration, envVarNameSchema, nameSchema } from './primitives.js';

// The `postgres` section of a target: an application's Postgres database, its backups (pg_dump custom format with
// a signed manifest) and what a restore checks (seed: feature-flag-dual-write-rollback.md, scenario 4).

/** A Postgres database name a runbook creates or renames: lowercase, short enough for `<name>_pre_<8>` (≤ 63). */
export const pgDatabaseName = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,45}$/, 'must be a lowercase Postgres database name of at most 46 characters');

/** A Postgres backup an operator may name: `<prefix>_<UTC time>[-tag].dump`, no path. */
export const PG_BACKUP_FILE_PATTERN =
  /^[a-z0-9][a-z0-9._-]{0,63}_\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}(-[a-z0-9]{1,16})?\.dump$/;

/** Where backups live: a local directory, or an S3-compatible bucket (with a local cache for dumps and downloads). */
export const pgBackupLocationSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('local'), dir: z.string().min(1) }),
  z.strictObject({
    type: z.literal('s3'),
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name'),
    /** key prefix of the backups, e.g. "staging/" (empty: the bucket's top) */
    prefix: z
      .string()
      .regex(/^([A-Za-z0-9._-]+\/)*$/, 'must be path segments ending with "/" (or empty)')
      .default(''),
    region: z.string().min(1).default('us-east-1'),
    /** the worker's variable holding the endpoint URL of an S3-compatible server (MinIO); absent: AWS S3 */
    endpointEnv: envVarNameSchema.optional(),
    /** the worker's variables holding the credentials (names only: the values never enter a file or history) */
    accessKeyIdEnv: envVarNameSchema.default('AWS_ACCESS_KEY_ID'),
    secretAccessKeyEnv: envVarNameSchema.default('AWS_SECRET_ACCESS_KEY'),
    /** the worker's local copies: a dump before its upload, a backup downloaded before it is checked and restored */
    cacheDir: z.string().min(1),
  }),
]);
export type PgBackupLocation = z.infer<typeof pgBackupLocationSchema>;

/** How a count after the restore compares with the baseline taken before it. */
const compareSchema = z
  .union([z.literal('equal'), z.strictObject({ within: z.number().int().min(0) })])
  .default('equal');

export const postgresTargetSchema = z.strictObject({
  /** the worker's environment variable holding a connection string to the server (credentials stay there) */
  urlEnv: envVarNameSchema,
  /** the application's database: what is backed up, and what a restore replaces */
  database: pgDatabaseName,
  /** where the runbooks connect to create, drop and rename databases (never the application's database) */
  maintenanceDatabase: pgDatabaseName.default('postgres'),
  /** the services that use the database: stopped before a restore, started after (Kubernetes: to their replicas) */
  services: z.record(nameSchema, serviceSchema).default({}),
  /** the seed's verification queries: each returns one number; compared with the baseline before the restore */
  counts: z
    .array(
      z.strictObject({
        name: nameSchema,
        /** read-only SQL returning one row with one number */
        query: z.string().min(1),
        compare: compareSchema,
      }),
    )
    .default([]),
  backups: z.strictObject({
    location: pgBackupLocationSchema,
    /** backup files are `<prefix>_<UTC time>.dump` (default: the database name) */
    prefix: nameSchema.optional(),
    retention: boundedDuration({ min: '1h', max: '3650d' }).default('30d').transform(String),
  }),
});
export type PostgresTargetConfig = z.infer<typeof postgresTargetSchema>;

const pgBackupFile = z
  .string()
  .regex(
    PG_BACKUP_FILE_PATTERN,
    'must be a backup file name of the target (<prefix>_<YYYY-MM-DD_HH-MM-SS>.dump), no path',
  );

export const postgresBackupInputSchema = z.strictObject({ ...baseInput, ...backupRunInput });
export type PostgresBackupInput = z.input<typeof postgresBackupInputSchema>;

export const postgresRestoreInputSchema = z.strictObject({
  ...baseInput,
  /** restore this backup instead of the newest verified one */
  backup: pgBackupFile.optional(),
  /** the newest verified backup taken before this time (ISO 8601) */
  before: z.iso.datetime({ offset: true }).optional(),
});
export type PostgresRestoreInput = z.input<typeof postgresRestoreInputSchema>;
