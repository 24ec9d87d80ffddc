import { unlink } from 'node:fs/promises';
import { parseDuration } from '../../shared/duration.js';
import type { ApprovalPolicy, EscalationLevel } from '../../shared/types.js';
import { approvalPolicyOf } from '../environment.js';
import { listBackups, MANIFEST_SUFFIX, manifestPath, type ListedBackup } from '../sqlite/backup-files.js';
import { heartbeating } from '../sqlite/heartbeat.js';
import { deleteFromS3, syncFromS3, uploadToS3 } from './s3.js';
import { backupTime } from '../sqlite/backup.js';
import type { SqliteDeps } from '../sqlite/deps.js';
import { trustedWorkerKeys } from '../sqlite/target.js';
import { dumpWithManifest, PG_BACKUPS, type PgBackupManifest } from './dump.js';
import { loadPostgresTarget, withDatabase, type PostgresTarget, type TargetRef } from './target.js';

/** What the Postgres runbooks learn about their target: names and policies, never the connection string. */
export interface PostgresTargetDescription {
  environmentFile: string;
  database: string;
  backupsDir: string;
  prefix: string;
  retention: string;
  services: Array<{ name: string; describe: string }>;
  counts: Array<{ name: string; compare: 'equal' | { within: number } }>;
  healthUrl?: string;
  approval: ApprovalPolicy;
  escalation: EscalationLevel[];
}

export type PostgresDeps = SqliteDeps;

/** The target's backups, newest first, judged against the trusted keys (an s3 location is synced into its cache first). */
export async function listPgBackups(t: PostgresTarget, ownKey: string): Promise<ListedBackup<PgBackupManifest>[]> {
  if (t.s3) await heartbeating(syncFromS3(t));
  return listBackups(t.backupsDir, t.prefix, await trustedWorkerKeys(t, ownKey), PG_BACKUPS);
}

export const createPostgresBackupActivities = (deps: PostgresDeps) => {
  const load = (ref: TargetRef) => loadPostgresTarget(deps.environmentsDir, ref, deps.runner);
  return {
    async describePostgresTarget(ref: TargetRef): Promise<PostgresTargetDescription> {
      const t = await load(ref);
      return {
        environmentFile: t.loaded.file,
        database: t.database,
        backupsDir: t.backupsDir,
        prefix: t.prefix,
        retention: t.config.backups.retention,
        services: Object.entries(t.services).map(([name, s]) => ({ name, describe: s.describe() })),
        counts: t.config.counts.map((c) => ({ name: c.name, compare: c.compare })),
        healthUrl: t.loaded.target.health?.http.url,
        approval: approvalPolicyOf(t.loaded),
        escalation: t.loaded.config.escalation,
      };
    },

    /** Read-only: the database's size and tables, and the backups there are. */
    async inspectPostgresDatabase(ref: TargetRef) {
      const t = await load(ref);
      const db = await withDatabase(t, t.database, async (c) => {
        const r = await c.query<{ bytes: string; tables: string }>(
          `SELECT pg_database_size(current_database()) AS bytes,
             (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')) AS tables`,
        );
        return { bytes: Number(r.rows[0]!.bytes), tables: Number(r.rows[0]!.tables) };
      });
      const backups = await listPgBackups(t, deps.signingKey.publicKey);
      const verified = backups.filter((b) => !b.problem);
      return { ...db, backups: { count: backups.length, verified: verified.length, newest: verified[0]?.file } };
    },

    /** pg_dump (custom format) with row counts of the same snapshot, then the signed manifest. Heartbeats. */
    async takePostgresBackup(ref: TargetRef & { name: string; workflowId: string; runId: string }) {
      const t = await load(ref);
      const m = await dumpWithManifest(t, t.backupsDir, ref, deps.signingKey);
      if (t.s3) await heartbeating(uploadToS3(t, m.file));
      deps.log.info({ target: `${ref.environment}/${ref.target}`, file: m.file }, 'postgres backup taken');
      return m;
    },

    /**
     * Retention: deletes backups older than the retention — never the newest verified one, never anything but
     * `<prefix>_<time>.dump` files and their manifests. `dryRun` only lists what would go.
     */
    async prunePostgresBackups(ref: TargetRef & { dryRun?: boolean }) {
      const t = await load(ref);
      const all = await listPgBackups(t, deps.signingKey.publicKey);
      const newest = all.find((b) => !b.problem)?.file;
      const cutoff = Date.now() - parseDuration(t.config.backups.retention);
      const doomed = all.filter((b) => b.file !== newest && backupTime(b) < cutoff);
      if (!ref.dryRun)
        for (const b of doomed) {
          // the manifest first: without it the dump is no backup
          if (t.s3) for (const name of [`${b.file}${MANIFEST_SUFFIX}`, b.file]) await deleteFromS3(t, name);
          await unlink(b.path).catch(() => {});
          await unlink(manifestPath(t.backupsDir, b.file)).catch(() => {});
        }
      return {
        deleted: doomed.map((b) => b.file),
        kept: all.length - doomed.length,
        freedBytes: doomed.reduce((n, b) => n + b.bytes, 0),
      };
    },

    /** The target's backups, newest first, with why any of them cannot be restored. */
    async listPostgresBackups(ref: TargetRef) {
      const t = await load(ref);
      return (await listPgBackups(t, deps.signingKey.publicKey)).map(({ manifest, ...b }) => ({
        ...b,
        createdAt: manifest?.createdAt,
        rows: manifest?.rows,
      }));
    },
  };
};
