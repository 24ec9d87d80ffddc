import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { PUBLIC_KEY_PATTERN } from '../../shared/decisions.js';
import { PG_BACKUP_FILE_PATTERN } from '../../shared/schemas.js';
import { runCommand } from '../adapters/exec.js';
import { sha256File } from '../digest.js';
import type { KeyPair } from '../keys.js';
import { heartbeating } from '../sqlite/heartbeat.js';
import { manifestPath, writeManifest, type BackupKind } from '../sqlite/backup-files.js';
import { countTableRows, withDatabase, type PostgresTarget } from './target.js';

// Postgres backups: `pg_dump --format=custom` files with a signed manifest beside them (`<file>.manifest.json`,
// the same signing as the SQLite backups). The row counts in the manifest are taken in the very snapshot the dump
// reads (pg_export_snapshot + pg_dump --snapshot), so a restore can compare them exactly.

export const PG_BACKUP_FORMAT = 'postgres-backup@1';
/** long enough for a large database; the activity heartbeats while it runs */
const DUMP_TIMEOUT_MS = 4 * 3600_000;

const digestSchema = z.string().regex(/^[0-9a-f]{64}$/);
export const pgManifestSchema = z.strictObject({
  format: z.literal(PG_BACKUP_FORMAT),
  name: z.string(),
  file: z.string().regex(PG_BACKUP_FILE_PATTERN),
  database: z.string(),
  createdAt: z.iso.datetime(),
  method: z.literal('pg_dump-custom'),
  serverVersion: z.string(),
  dump: z.strictObject({ bytes: z.number().int().min(0), sha256: digestSchema }),
  tables: z.number().int().min(0),
  /** exact rows per `schema.table`, in the dump's snapshot */
  rows: z.record(z.string(), z.number().int().min(0)),
  workflowId: z.string().optional(),
  runId: z.string().optional(),
  signature: z.strictObject({ publicKey: z.string().regex(PUBLIC_KEY_PATTERN), value: z.string() }).optional(),
});
export type PgBackupManifest = z.infer<typeof pgManifestSchema>;

export const PG_BACKUPS: BackupKind<PgBackupManifest> = {
  file: PG_BACKUP_FILE_PATTERN,
  schema: pgManifestSchema,
  stored: (m) => m.dump,
};

/** Which dump a run takes: its name (`<prefix>_<time>-<tag><run>`) and the run that takes it. */
export interface DumpRef {
  name: string;
  workflowId?: string;
  runId?: string;
}

/**
 * pg_dump of the target's database into `dir/<name>.dump` with its signed manifest. Idempotent: a dump whose manifest exists
 * is returned as it is; a half-written one (`.partial`, from a killed attempt) is started over.
 */
export async function dumpWithManifest(
  t: PostgresTarget,
  dir: string,
  ref: DumpRef,
  key: KeyPair,
): Promise<PgBackupManifest> {
  const o = { ...ref, dir, key, database: t.database };
  const file = `${o.name}.dump`;
  const path = join(o.dir, file);
  const existing = await readFile(manifestPath(o.dir, file), 'utf8').then(
    (s) => pgManifestSchema.parse(JSON.parse(s)),
    () => undefined,
  );
  if (existing) return existing;
  await mkdir(o.dir, { recursive: true, mode: 0o700 });
  const partial = `${path}.partial`;
  await rm(partial, { force: true });
  const { rows, serverVersion, at } = await withDatabase(t, o.database, async (c) => {
    // one snapshot for the counts and the dump: the manifest describes exactly what the file holds
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const snapshot = (await c.query<{ s: string }>('SELECT pg_export_snapshot() AS s')).rows[0]!.s;
    const at = new Date().toISOString();
    const version = (await c.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
    const counted = await countTableRows(c);
    await heartbeating(
      runCommand('pg_dump', ['--format=custom', `--snapshot=${snapshot}`, `--file=${partial}`, '--no-password'], {
        env: t.commandEnv(o.database),
        timeoutMs: DUMP_TIMEOUT_MS,
      }),
      () => ({ dumping: file }),
    );
    await c.query('COMMIT');
    return { rows: counted, serverVersion: version, at };
  });
  const bytes = (await stat(partial)).size;
  const sha256 = await heartbeating(sha256File(partial));
  // the dump must be readable by pg_restore before it is called a backup
  await runCommand('pg_restore', ['--list', partial], { env: t.commandEnv(o.database), timeoutMs: DUMP_TIMEOUT_MS });
  await rename(partial, path);
  const manifest: PgBackupManifest = {
    format: PG_BACKUP_FORMAT,
    name: o.name,
    file,
    database: o.database,
    createdAt: at,
    method: 'pg_dump-custom',
    serverVersion,
    dump: { bytes, sha256 },
    tables: Object.keys(rows).length,
    rows,
    workflowId: o.workflowId,
    runId: o.runId,
  };
  return writeManifest(dirname(path), manifest, o.key);
}
