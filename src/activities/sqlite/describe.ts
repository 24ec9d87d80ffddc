import { stat } from 'node:fs/promises';
import { approvalPolicyOf } from '../environment.js';
import type { ApprovalPolicy, EscalationLevel } from '../../shared/types.js';
import { listBackups } from './backup-files.js';
import type { SqliteDeps } from './deps.js';
import {
  companions,
  freeBytes,
  loadSqliteTarget,
  sameFilesystem,
  trustedWorkerKeys,
  type TargetRef,
} from './target.js';

/** What the SQLite runbooks learn about their target: names, paths and policies, never credentials. */
export interface SqliteTargetDescription {
  environmentFile: string;
  database: string;
  backupsDir: string;
  prefix: string;
  forensicsDir: string;
  sandboxDir: string;
  services: Array<{ name: string; describe: string }>;
  flagStore?: string;
  healthUrl?: string;
  smoke: { http: number; sql: number };
  coreTables: string[];
  minIndexes: number;
  retention: string;
  method: 'backup-api' | 'vacuum-into';
  compression: number;
  monitor: { window: string; interval: string; errorLog?: string; pattern: string; maxErrors: number };
  rto: string;
  drillTarget: string;
  minFree: number;
  init?: string;
  milestones: Record<
    string,
    {
      tables: number;
      indexes: number;
      triggers: number;
      virtualTables: number;
      flags: string[];
      stopServices: string[];
    }
  >;
  approval: ApprovalPolicy;
  escalation: EscalationLevel[];
}

/** The database's files and space as they are now: read-only, for plans. */
export interface DatabaseInspection {
  exists: boolean;
  bytes: number;
  walBytes: number;
  shmBytes: number;
  freeBytes: number;
  backupsFreeBytes: number;
  backupsOnSameFilesystem: boolean;
  backups: { count: number; verified: number; newestVerified?: string; bytes: number };
}

export const createSqliteDescribeActivities = (deps: SqliteDeps) => ({
  async describeSqliteTarget(ref: TargetRef): Promise<SqliteTargetDescription> {
    const t = await loadSqliteTarget(deps.environmentsDir, ref, deps.runner);
    const c = t.config;
    return {
      environmentFile: t.loaded.file,
      database: t.db,
      backupsDir: t.backupsDir,
      prefix: t.prefix,
      forensicsDir: t.forensicsDir,
      sandboxDir: t.sandboxDir,
      services: Object.entries(t.services).map(([name, s]) => ({ name, describe: s.describe() })),
      flagStore: t.flags?.describe(),
      healthUrl: t.loaded.target.health?.http.url,
      smoke: { http: c.smoke.http.length, sql: c.smoke.sql.length },
      coreTables: c.validation.coreTables,
      minIndexes: c.validation.minIndexes,
      retention: c.backups.retention,
      method: c.backups.method,
      compression: c.backups.compression,
      monitor: { ...c.monitor, errorLog: t.errorLog },
      rto: c.rto,
      drillTarget: c.drill.target,
      minFree: c.space.minFree,
      init: c.init
        ? 'sqlFile' in c.init
          ? `sql file ${t.initSqlFile}`
          : `command ${c.init.command.join(' ')}`
        : undefined,
      milestones: Object.fromEntries(
        Object.entries(c.milestones).map(([name, m]) => [
          name,
          {
            tables: m.tables.length,
            indexes: m.indexes.length,
            triggers: m.triggers.length,
            virtualTables: m.virtualTables.length,
            flags: Object.keys(m.flags),
            stopServices: m.stopServices.length ? m.stopServices : Object.keys(t.services),
          },
        ]),
      ),
      approval: approvalPolicyOf(t.loaded),
      escalation: t.loaded.config.escalation,
    };
  },

  async inspectDatabase(ref: TargetRef): Promise<DatabaseInspection> {
    const t = await loadSqliteTarget(deps.environmentsDir, ref, deps.runner);
    const size = (p: string) =>
      stat(p).then(
        (s) => s.size,
        () => -1,
      );
    const [bytes, walBytes, shmBytes] = await Promise.all([
      size(t.db),
      size(companions(t.db).wal),
      size(companions(t.db).shm),
    ]);
    const backups = await listBackups(t.backupsDir, t.prefix, await trustedWorkerKeys(t, deps.signingKey.publicKey));
    const verified = backups.filter((b) => !b.problem);
    return {
      exists: bytes >= 0,
      bytes: Math.max(bytes, 0),
      walBytes: Math.max(walBytes, 0),
      shmBytes: Math.max(shmBytes, 0),
      freeBytes: await freeBytes(t.db),
      backupsFreeBytes: await freeBytes(t.backupsDir),
      backupsOnSameFilesystem: await sameFilesystem(t.db, t.backupsDir),
      backups: {
        count: backups.length,
        verified: verified.length,
        newestVerified: verified[0]?.file,
        bytes: backups.reduce((n, b) => n + b.bytes, 0),
      },
    };
  },
});
