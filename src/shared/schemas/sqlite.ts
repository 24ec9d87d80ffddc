import { z } from 'zod';
import { flagStoreSchema, serviceSchema } from './adapters.js';
import {
  boundedDuration,
  byteSizeSchema,
  durationSchema,
  envVarNameSchema,
  nameSchema,
  sqlIdentifier,
} from './primitives.js';

// The `sqlite` section of a target: an application that lives on one SQLite file in WAL mode
// (seed: sqlite-rollback-and-disaster-recovery.md).

/** A backup file an operator may name: a file of the backups directory (no path), `<prefix>_<UTC time>[-tag].db.gz`. */
export const BACKUP_FILE_PATTERN =
  /^[a-z0-9][a-z0-9._-]{0,63}_\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}(-[a-z0-9]{1,16})?\.db\.gz$/;

/** The seed's milestone-1 tables: what every rollback must leave intact. */
export const SEED_CORE_TABLES = ['tasks', 'agents', 'audit', 'checkpoints', 'state', 'metrics'];

const sqlValue = z.union([z.string(), z.number(), z.null()]);

/** A milestone's footprint: what its rollback drops, resets, turns off and stops (seed §2.2, §2.3). */
export const milestoneSchema = z.strictObject({
  description: z.string().optional(),
  tables: z.array(sqlIdentifier).default([]),
  indexes: z.array(sqlIdentifier).default([]),
  triggers: z.array(sqlIdentifier).default([]),
  /** virtual tables (FTS5, sqlite-vss): dropped like tables, their shadow tables with them */
  virtualTables: z.array(sqlIdentifier).default([]),
  /** rows that stay but lose what the milestone added (seed: document_index back to sync_status = 'pending') */
  reset: z.array(z.strictObject({ table: sqlIdentifier, set: z.record(sqlIdentifier, sqlValue) })).default([]),
  /** flags turned off in the target's `sqlite.flags` store (name → value) */
  flags: z.record(envVarNameSchema, z.string()).default({}),
  /** services (names under `sqlite.services`) stopped for the rollback and started after; empty: all of them */
  stopServices: z.array(nameSchema).default([]),
  /** tables that must survive byte-identical (default: validation.coreTables) */
  keepTables: z.array(sqlIdentifier).optional(),
});
export type MilestoneConfig = z.infer<typeof milestoneSchema>;

const smokeSchema = z.strictObject({
  http: z
    .array(
      z.strictObject({
        name: z.string().optional(),
        url: z.url(),
        expectStatus: z.number().int().default(200),
        expectBody: z.string().optional(),
      }),
    )
    .default([]),
  /** read-only queries; `expect` is the first column of the first row, or a comparison such as ">= 1" */
  sql: z
    .array(
      z.strictObject({
        name: z.string().optional(),
        query: z.string().min(1),
        expect: z.union([z.string(), z.number()]).optional(),
      }),
    )
    .default([]),
});

export const sqliteTargetSchema = z
  .strictObject({
    /** the database file; its -wal and -shm live beside it */
    path: z.string().min(1),
    /** the services that use the database, by name: stopped before a restore, started after */
    services: z.record(nameSchema, serviceSchema).default({}),
    /** the application's feature flags (milestone rollbacks turn theirs off) */
    flags: flagStoreSchema.optional(),
    /** what "valid" means after every rollback (seed §5.2) */
    validation: z
      .strictObject({
        coreTables: z.array(sqlIdentifier).min(1).default(SEED_CORE_TABLES),
        /** the seed: "33+ indexes" */
        minIndexes: z.number().int().min(0).default(0),
        minTables: z.number().int().min(0).default(0),
        foreignKeys: z.boolean().default(true),
      })
      .prefault({}),
    smoke: smokeSchema.prefault({}),
    /** how a fresh start re-initialises the database: an SQL file, or a command (argv, no shell) */
    init: z
      .union([
        z.strictObject({ sqlFile: z.string().min(1) }),
        z.strictObject({ command: z.array(z.string().min(1)).min(1), cwd: z.string().optional() }),
      ])
      .optional(),
    backups: z.strictObject({
      dir: z.string().min(1),
      /** backup files are <prefix>_<UTC time>.db.gz (default: the database file's name without extension) */
      prefix: nameSchema.optional(),
      retention: boundedDuration({ min: '1h', max: '3650d' }).default('30d').transform(String),
      // the defaults of method and compression are the ones chosen by the benchmark: BENCHMARKS.md, "SQLite backup"
      /** how the online copy is taken: the backup API (a WAL copy) or VACUUM INTO (compacted, rollback journal) */
      method: z.enum(['backup-api', 'vacuum-into']).default('backup-api'),
      /** gzip level: 1 is fastest */
      compression: z.number().int().min(1).max(9).default(1),
    }),
    /** forensic copies of db + wal + shm before anything replaces them (default: <backups.dir>/forensics) */
    forensicsDir: z.string().min(1).optional(),
    /** after a restore: how long health and the error log are watched on a durable timer */
    monitor: z
      .strictObject({
        window: durationSchema.default('30m').transform(String),
        interval: boundedDuration({ min: '1s', max: '1h' }).default('30s').transform(String),
        /** a file the application writes errors to; lines matching `pattern` count as errors */
        errorLog: z.string().min(1).optional(),
        pattern: z.string().default('ERROR'),
        /** more error lines than this within the window fails the monitoring */
        maxErrors: z.number().int().min(0).default(0),
      })
      .prefault({}),
    /** recovery time objective (seed: < 1 hour) */
    rto: durationSchema.default('1h').transform(String),
    drill: z
      .strictObject({
        /** the drill's rollback time target (seed: < 10 minutes) */
        target: durationSchema.default('10m').transform(String),
        /** where drills restore (never the live file); default: <backups.dir>/drills */
        sandboxDir: z.string().min(1).optional(),
      })
      .prefault({}),
    /** disk exhaustion (seed §4.3): recovery starts below this much free space on the database's filesystem */
    space: z.strictObject({ minFree: byteSizeSchema.default(1_000_000_000) }).prefault({}),
    milestones: z.record(nameSchema, milestoneSchema).default({}),
  })
  .superRefine((s, ctx) => {
    for (const [name, m] of Object.entries(s.milestones)) {
      for (const [i, svc] of m.stopServices.entries()) {
        if (!(svc in s.services))
          ctx.addIssue({
            code: 'custom',
            path: ['milestones', name, 'stopServices', i],
            message: `"${svc}" is not a service of this target (known: ${Object.keys(s.services).join(', ') || 'none'})`,
          });
      }
      if (Object.keys(m.flags).length > 0 && !s.flags)
        ctx.addIssue({
          code: 'custom',
          path: ['milestones', name, 'flags'],
          message: 'needs sqlite.flags (the flag store)',
        });
      const keep = new Set(m.keepTables ?? s.validation.coreTables);
      for (const [i, t] of [...m.tables, ...m.virtualTables].entries())
        if (keep.has(t))
          ctx.addIssue({
            code: 'custom',
            path: ['milestones', name, 'tables', i],
            message: `"${t}" is a table that must survive (core / keepTables)`,
          });
    }
  });
export type SqliteTargetConfig = z.infer<typeof sqliteTargetSchema>;
