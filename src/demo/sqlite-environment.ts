import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { repoRoot } from '../dev/temporal-server.js';
import { environmentHeader } from './environment.js';
import { SCHEMA, SCHEMA_SQL_PATH } from './sqlite-app/schema.js';

// The demo SQLite application as a runbook target: environments/demo.yaml's `app` target, and the same shape
// written for tests with their own port, files and policies.

/** The application's feature flags (seed §2.3 step 2), on while the vector-search milestone is live. */
export const INITIAL_APP_FLAGS = [
  '# demo SQLite application feature flags (milestone 3: vector search)',
  'SEMANTIC_SEARCH_ENABLED=true',
  'BACKGROUND_DOCUMENT_SYNC=true',
  'EMBEDDING_GENERATION=true',
  '',
].join('\n');

export interface SqliteAppFiles {
  dataDir: string;
  db: string;
  flagsFile: string;
  errorLog: string;
  pidFile: string;
  logFile: string;
  backupsDir: string;
}

export const sqliteAppFiles = (dataDir: string, backupsDir = join(dataDir, '..', 'app-backups')): SqliteAppFiles => ({
  dataDir,
  db: join(dataDir, 'abathur.db'),
  flagsFile: join(dataDir, 'features.env'),
  errorLog: join(dataDir, 'errors.log'),
  pidFile: join(dataDir, 'api.pid'),
  logFile: join(dataDir, 'api.log'),
  backupsDir,
});

/** The seed's milestone manifests (§2.2 memory, §2.3 vector search), from the demo schema's own lists. */
export function demoMilestones(): Record<string, unknown> {
  return {
    memory: {
      description: 'milestone 2: sessions, memory entries, document index (seed §2.2)',
      tables: [...SCHEMA.memory.tables],
      indexes: [...SCHEMA.memory.indexes],
      triggers: [...SCHEMA.memory.triggers],
      stopServices: ['api'],
    },
    vector: {
      description: 'milestone 3: vector search (seed §2.3); document_index stays, back to pending',
      tables: SCHEMA.vector.tables.filter((t) => !SCHEMA.vector.virtualTables.includes(t)),
      virtualTables: [...SCHEMA.vector.virtualTables],
      indexes: [...SCHEMA.vector.indexes],
      triggers: [...SCHEMA.vector.triggers],
      reset: [{ table: 'document_index', set: { sync_status: 'pending', embedding_blob: null } }],
      flags: { SEMANTIC_SEARCH_ENABLED: 'false', BACKGROUND_DOCUMENT_SYNC: 'false', EMBEDDING_GENERATION: 'false' },
      stopServices: ['api'],
    },
  };
}

export interface SqliteEnvironmentOptions {
  environmentsDir: string;
  name: string;
  dataDir: string;
  backupsDir?: string;
  port: number;
  approval?: Record<string, unknown>;
  escalation?: Array<Record<string, unknown>>;
  /** top-level sections (lockWait, evidence, …) */
  sections?: Record<string, unknown>;
  /** merged over the target's `sqlite` section */
  sqlite?: Record<string, unknown>;
  writeIntervalMs?: number;
}

/** The service's command line. */
export function sqliteAppCommand(files: SqliteAppFiles, port: number, writeIntervalMs = 50): string[] {
  return [
    process.execPath,
    join(repoRoot, 'src/demo/sqlite-app/service.mjs'),
    '--db',
    files.db,
    '--port',
    String(port),
    '--flags-file',
    files.flagsFile,
    '--error-log',
    files.errorLog,
    '--write-interval-ms',
    String(writeIntervalMs),
  ];
}

/** Writes `<name>.yaml` with an `app` target: the demo SQLite application on `port` with files under dataDir. */
export function writeSqliteEnvironment(o: SqliteEnvironmentOptions): SqliteAppFiles & { file: string } {
  const files = sqliteAppFiles(o.dataDir, o.backupsDir ?? join(o.dataDir, 'backups'));
  mkdirSync(o.dataDir, { recursive: true });
  writeFileSync(files.flagsFile, INITIAL_APP_FLAGS);
  const base = `http://127.0.0.1:${o.port}`;
  const doc = {
    ...environmentHeader(o),
    targets: {
      app: {
        description: 'demo SQLite application (src/demo/sqlite-app/service.mjs)',
        health: { http: { url: `${base}/health`, expectBody: 'healthy', within: '15s' } },
        sqlite: {
          path: files.db,
          services: {
            api: {
              type: 'process',
              command: sqliteAppCommand(files, o.port, o.writeIntervalMs),
              pidFile: files.pidFile,
              logFile: files.logFile,
              reload: 'restart',
            },
          },
          flags: { type: 'env-file', path: files.flagsFile },
          validation: { minIndexes: 33, minTables: 9 },
          smoke: {
            http: [{ name: 'search', url: `${base}/search?q=rollback`, expectStatus: 200 }],
            sql: [{ name: 'tasks present', query: 'SELECT count(*) FROM tasks', expect: '>= 1' }],
          },
          init: { sqlFile: SCHEMA_SQL_PATH },
          backups: { dir: files.backupsDir, retention: '30d' },
          monitor: { window: '3s', interval: '1s', errorLog: files.errorLog, pattern: 'ERROR' },
          space: { minFree: '100MB' },
          milestones: demoMilestones(),
          ...o.sqlite,
        },
      },
    },
  };
  mkdirSync(o.environmentsDir, { recursive: true });
  const file = join(o.environmentsDir, `${o.name}.yaml`);
  writeFileSync(file, stringify(doc));
  return { ...files, file };
}
