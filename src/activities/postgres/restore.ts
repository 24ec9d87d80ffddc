import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../shared/constants.js';
import { runCommand } from '../adapters/exec.js';
import { pollHttp } from '../health.js';
import { backupInvalid, verifyBackupDigest } from '../sqlite/backup-files.js';
import { chooseBackupIn, type SkippedBackup } from '../sqlite/choose.js';
import { heartbeating } from '../sqlite/heartbeat.js';
import { listPgBackups, type PostgresDeps } from './backup.js';
import { dumpWithManifest, PG_BACKUPS } from './dump.js';
import {
  countTableRows,
  databaseExists,
  ident,
  loadPostgresTarget,
  runCountQueries,
  withDatabase,
  type PostgresTarget,
  type TargetRef,
} from './target.js';

// The restore runbook's activities (seed scenario 4): choose, baseline, stop, safety dump, restore into a new
// database, validate, swap by rename (the old database kept), start, health and counts. Each is idempotent: it
// looks at what is there (which databases exist, which manifest is written) before it acts.

const verificationFailed = (message: string) => ApplicationFailure.nonRetryable(message, ErrorType.VerificationFailed);
const RESTORE_TIMEOUT_MS = 4 * 3600_000;

export interface ChosenPgBackup {
  file: string;
  createdAt: string;
  bytes: number;
  sha256: string;
  tables: number;
  rows: Record<string, number>;
  serverVersion: string;
  workflowId?: string;
}

export interface PgServiceState {
  name: string;
  running: boolean;
  detail: string;
  /** Kubernetes: the replica count it was set to (a restart scales back to exactly this) */
  replicas?: number;
}

/** The names a restore works with: the new database, and the name the old one is kept under. */
export interface SwapNames {
  incoming: string;
  keepAs: string;
}

/** Connections to these databases other than ours end (a rename needs the database to itself). */
const terminateOthers = (c: { query: (q: string, v: unknown[]) => Promise<unknown> }, names: string[]) =>
  c.query(
    'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ANY($1) AND pid <> pg_backend_pid()',
    [names],
  );

export const createPostgresRestoreActivities = (deps: PostgresDeps) => {
  const load = (ref: TargetRef) => loadPostgresTarget(deps.environmentsDir, ref, deps.runner);
  const maintenance = <T>(t: PostgresTarget, fn: Parameters<typeof withDatabase<T>>[2]) =>
    withDatabase(t, t.config.maintenanceDatabase, fn);
  /** never drop or overwrite the application's database or the one a swap keeps */
  const refuseLive = (t: PostgresTarget, name: string) => {
    if (name === t.database)
      throw ApplicationFailure.nonRetryable(`refusing to replace the live database ${name}`, ErrorType.CommandRefused);
  };

  return {
    /** Read-only: the newest verified backup (before `before`), or the named one; what it skipped and why. */
    async choosePostgresBackup(
      ref: TargetRef & { backup?: string; before?: string },
    ): Promise<{ chosen: ChosenPgBackup; skipped: SkippedBackup[] }> {
      const t = await load(ref);
      const all = await listPgBackups(t, deps.signingKey.publicKey);
      const { chosen, skipped } = await chooseBackupIn(
        all,
        { prefix: t.prefix, dir: t.backupsDir },
        { wanted: ref.backup, before: ref.before, kind: PG_BACKUPS },
      );
      const m = chosen.manifest;
      return {
        chosen: {
          file: chosen.file,
          createdAt: m.createdAt,
          bytes: m.dump.bytes,
          sha256: m.dump.sha256,
          tables: m.tables,
          rows: m.rows,
          serverVersion: m.serverVersion,
          workflowId: m.workflowId,
        },
        skipped,
      };
    },

    /** Read-only: the configured count queries on the live database (or `database`). */
    async postgresCounts(ref: TargetRef & { database?: string }): Promise<Record<string, number>> {
      const t = await load(ref);
      return withDatabase(t, ref.database ?? t.database, (c) => runCountQueries(c, t.config.counts));
    },

    async postgresServiceStates(ref: TargetRef): Promise<PgServiceState[]> {
      const t = await load(ref);
      const out: PgServiceState[] = [];
      for (const [name, s] of Object.entries(t.services)) {
        const st = await s.status();
        out.push({
          name,
          running: st.running,
          detail: st.detail,
          replicas: s.replicas ? await s.replicas() : undefined,
        });
      }
      return out;
    },

    /** Stops every service (Kubernetes: scale to 0) and checks it is down. Idempotent. */
    async stopPostgresServices(ref: TargetRef): Promise<string[]> {
      const t = await load(ref);
      for (const [name, s] of Object.entries(t.services)) {
        await heartbeating(s.scale ? s.scale(0) : s.stop());
        const st = await s.status();
        if (st.running) throw new Error(`${s.describe()} still running after stop: ${st.detail}`);
        deps.log.info({ target: `${ref.environment}/${ref.target}`, service: name }, 'service stopped');
      }
      return Object.keys(t.services);
    },

    /**
     * Starts the services as they were before (`before`): Kubernetes back to its replica count, others started
     * when they were running. Idempotent.
     */
    async startPostgresServices(ref: TargetRef & { before: PgServiceState[] }): Promise<string[]> {
      const t = await load(ref);
      const started: string[] = [];
      for (const was of ref.before) {
        const s = t.services[was.name];
        if (!s) continue;
        if (s.scale && was.replicas !== undefined) await heartbeating(s.scale(was.replicas));
        else if (was.running && !(await s.status()).running) await heartbeating(s.start());
        started.push(`${was.name}${was.replicas !== undefined ? ` (${was.replicas} replicas)` : ''}`);
      }
      return started;
    },

    /** pg_dump of the live database into <backups>/safety before anything replaces it (signed manifest). */
    async takePostgresSafetyDump(ref: TargetRef & { name: string; workflowId: string; runId: string }) {
      const t = await load(ref);
      const m = await dumpWithManifest(t, t.safetyDir, ref, deps.signingKey);
      return { file: `${t.safetyDir}/${m.file}`, bytes: m.dump.bytes, sha256: m.dump.sha256, rows: m.rows };
    },

    /**
     * The backup into a NEW database `database`: dropped (FORCE: an earlier attempt's pg_restore may still hold
     * it) and created again first, so a retry after a killed worker restarts cleanly. The file's digest is checked
     * against its manifest first. Heartbeats while pg_restore runs.
     */
    async restorePostgresBackup(ref: TargetRef & { file: string; database: string }) {
      const t = await load(ref);
      refuseLive(t, ref.database);
      const backup = (await listPgBackups(t, deps.signingKey.publicKey)).find((b) => b.file === ref.file);
      if (!backup || backup.problem) throw backupInvalid(`${ref.file}: ${backup?.problem ?? 'no longer there'}`);
      await heartbeating(verifyBackupDigest(backup, PG_BACKUPS));
      await maintenance(t, async (c) => {
        await c.query(`DROP DATABASE IF EXISTS ${ident(ref.database)} WITH (FORCE)`);
        await c.query(`CREATE DATABASE ${ident(ref.database)}`);
      });
      await heartbeating(
        runCommand('pg_restore', ['--exit-on-error', '--no-password', `--dbname=${ref.database}`, backup.path], {
          env: t.commandEnv(ref.database),
          timeoutMs: RESTORE_TIMEOUT_MS,
        }),
        () => ({ restoring: ref.file, into: ref.database }),
      );
      return { database: ref.database, bytes: backup.bytes };
    },

    /** Row counts of every table of `database` against the backup's manifest: any difference fails. */
    async validatePostgresRestore(ref: TargetRef & { database: string; expected: Record<string, number> }) {
      const t = await load(ref);
      const rows = await withDatabase(t, ref.database, (c) => countTableRows(c));
      const problems = [...new Set([...Object.keys(rows), ...Object.keys(ref.expected)])]
        .filter((k) => rows[k] !== ref.expected[k])
        .map((k) => `${k}: ${rows[k] ?? 'missing'} rows, the manifest says ${ref.expected[k] ?? 'absent'}`);
      if (problems.length) throw verificationFailed(`${ref.database} differs from its backup: ${problems.join('; ')}`);
      return { tables: Object.keys(rows).length, rows: Object.values(rows).reduce((a, b) => a + b, 0) };
    },

    /**
     * The swap, in one transaction: live → keepAs, incoming → live (other connections to both end first).
     * Idempotent: when keepAs exists and incoming does not, it was done.
     */
    async swapPostgresDatabases(ref: TargetRef & SwapNames) {
      const t = await load(ref);
      refuseLive(t, ref.incoming);
      refuseLive(t, ref.keepAs);
      return maintenance(t, async (c) => {
        if ((await databaseExists(c, ref.keepAs)) && !(await databaseExists(c, ref.incoming)))
          return { state: 'already swapped' as const, previous: ref.keepAs };
        if (!(await databaseExists(c, ref.incoming)))
          throw verificationFailed(`the restored database ${ref.incoming} is not there`);
        await c.query('BEGIN');
        try {
          await terminateOthers(c, [t.database, ref.incoming]);
          await c.query(`ALTER DATABASE ${ident(t.database)} RENAME TO ${ident(ref.keepAs)}`);
          await c.query(`ALTER DATABASE ${ident(ref.incoming)} RENAME TO ${ident(t.database)}`);
          await c.query('COMMIT');
        } catch (err) {
          await c.query('ROLLBACK');
          throw err;
        }
        deps.log.warn({ target: `${ref.environment}/${ref.target}`, keptAs: ref.keepAs }, 'postgres database swapped');
        return { state: 'swapped' as const, previous: ref.keepAs };
      });
    },

    /**
     * The undo of the swap: the kept database back under the live name, the restored one back under `incoming`.
     * Does nothing when there is nothing kept (the swap never happened). Idempotent.
     */
    async swapBackPostgresDatabases(ref: TargetRef & SwapNames) {
      const t = await load(ref);
      return maintenance(t, async (c) => {
        if (!(await databaseExists(c, ref.keepAs))) return { state: 'nothing to swap back' as const };
        await c.query('BEGIN');
        try {
          await terminateOthers(c, [t.database, ref.keepAs]);
          if (await databaseExists(c, t.database)) {
            if (await databaseExists(c, ref.incoming))
              throw new Error(`cannot swap back: both ${t.database} and ${ref.incoming} exist`);
            await c.query(`ALTER DATABASE ${ident(t.database)} RENAME TO ${ident(ref.incoming)}`);
          }
          await c.query(`ALTER DATABASE ${ident(ref.keepAs)} RENAME TO ${ident(t.database)}`);
          await c.query('COMMIT');
        } catch (err) {
          await c.query('ROLLBACK');
          throw err;
        }
        deps.log.warn({ target: `${ref.environment}/${ref.target}` }, 'postgres database swapped back');
        return { state: 'swapped back' as const };
      });
    },

    /** Drops a database this run created (never the live one). Idempotent. */
    async dropPostgresDatabase(ref: TargetRef & { database: string }) {
      const t = await load(ref);
      refuseLive(t, ref.database);
      await maintenance(t, (c) => c.query(`DROP DATABASE IF EXISTS ${ident(ref.database)} WITH (FORCE)`));
    },

    /** The target's health check, polled within its window (nothing configured: nothing to check). */
    async checkPostgresHealth(ref: TargetRef): Promise<string> {
      const t = await load(ref);
      const http = t.loaded.target.health?.http;
      if (!http) return 'no health check configured';
      const r = await heartbeating(pollHttp(http));
      return `HTTP ${r.status} after ${r.ms} ms`;
    },

    /** The count queries now against the baseline, each as configured (equal, or within a difference). */
    async comparePostgresCounts(ref: TargetRef & { baseline: Record<string, number> }) {
      const t = await load(ref);
      const now = await withDatabase(t, t.database, (c) => runCountQueries(c, t.config.counts));
      const results = t.config.counts.map((q) => {
        const before = ref.baseline[q.name];
        const after = now[q.name]!;
        const allowed = q.compare === 'equal' ? 0 : q.compare.within;
        const ok = before !== undefined && Math.abs(after - before) <= allowed;
        return { name: q.name, before: before ?? null, after, allowed, ok };
      });
      const bad = results.filter((r) => !r.ok);
      if (bad.length)
        throw verificationFailed(
          `counts differ from the baseline: ${bad.map((r) => `${r.name} ${r.before} → ${r.after} (allowed ±${r.allowed})`).join('; ')}`,
        );
      return results;
    },
  };
};
