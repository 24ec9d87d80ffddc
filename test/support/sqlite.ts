import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import type { ServiceAdapter } from '../../src/activities/adapters/types.js';
import { loadSqliteTarget } from '../../src/activities/sqlite/target.js';
import { inThread } from '../../src/activities/sqlite/thread.js';
import { seedSqliteDatabase } from '../../src/demo/sqlite-app/seed.js';
import {
  writeSqliteEnvironment,
  type SqliteAppFiles,
  type SqliteEnvironmentOptions,
} from '../../src/demo/sqlite-environment.js';
import { freePort } from '../../src/dev/ports.js';
import { RUNBOOKS } from '../../src/shared/runbooks.js';
import type { Harness } from './harness.js';
import { httpHealth } from './wait.js';

let counter = 0;

export interface SqliteTestTarget extends SqliteAppFiles {
  envName: string;
  port: number;
  /** the `api` service as the worker sees it */
  service: ServiceAdapter;
  base: string;
  startService(): Promise<void>;
  stopService(): Promise<void>;
  health(): Promise<{ status: number; body: string }>;
  stats(): Promise<{
    pid: number;
    writes: number;
    writeErrors: number;
    tasks: number;
    milestones: Record<string, boolean>;
  }>;
  /** sha256 of a file's bytes ('' when absent) */
  fileDigest(path: string): string;
  /** per-table content digests of the database (service stopped, or a copy) */
  tableDigests(tables?: string[]): Promise<Record<string, { rows: number; sha256: string }>>;
}

export interface SqliteTargetOptions extends Partial<
  Omit<SqliteEnvironmentOptions, 'environmentsDir' | 'dataDir' | 'port' | 'name'>
> {
  /** seed this many bytes first (default 4 MB); 0: let the service create an empty schema */
  seedBytes?: number;
  milestones?: Array<'memory' | 'vector'>;
  /** start the service (default true) */
  start?: boolean;
}

const fileDigest = (path: string): string => {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return '';
  }
};

/** A demo SQLite application of the test's own: environment file, seeded database, running service. */
export async function sqliteTarget(h: Harness, o: SqliteTargetOptions = {}): Promise<SqliteTestTarget> {
  const port = await freePort();
  const envName = `sq${process.pid}-${counter++}`;
  const dataDir = join(h.root, 'data', envName, 'app');
  const files = writeSqliteEnvironment({
    environmentsDir: h.environmentsDir,
    name: envName,
    dataDir,
    backupsDir: join(h.root, 'data', envName, 'backups'),
    port,
    sections: { evidence: { workerKeys: [h.workerKey.publicKey] }, ...o.sections },
    ...o,
  });
  const seedBytes = o.seedBytes ?? 4_000_000;
  if (seedBytes > 0) await seedSqliteDatabase(files.db, { targetBytes: seedBytes, milestones: o.milestones });
  const t = await loadSqliteTarget(h.environmentsDir, { environment: envName, target: 'app' });
  const service = t.services.api!;
  const base = `http://127.0.0.1:${port}`;
  const health = () => httpHealth(base);
  const target: SqliteTestTarget = {
    ...files,
    envName,
    port,
    service,
    base,
    async startService() {
      await service.start();
      for (let i = 0; (await health()).status !== 200; i++) {
        if (i > 150) throw new Error(`sqlite demo app on ${base} did not become healthy: ${(await health()).body}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    stopService: () => service.stop(),
    health,
    stats: async () => (await fetch(`${base}/stats`)).json() as never,
    fileDigest,
    tableDigests: async (tables) => (await inThread('digests', { path: files.db, tables })).tables,
  };
  h.onClose(async () => {
    await service.stop().catch(() => {});
    if (process.env.KEEP_TEST_FILES !== '1') rmSync(join(h.root, 'data', envName), { recursive: true, force: true });
  });
  if (o.start !== false) await target.startService();
  return target;
}

/** Starts a runbook by its CLI name, with the search attributes the CLI sets. */
export function startRunbook(
  h: Harness,
  runbook: keyof typeof RUNBOOKS & string,
  input: Record<string, unknown> & { environment: string },
  workflowId = `${runbook}-${h.taskQueue}-${counter++}`,
): Promise<WorkflowHandle> {
  return h.client.workflow.start(RUNBOOKS[runbook]!.workflowType, {
    taskQueue: h.taskQueue,
    workflowId,
    args: [{ target: 'app', requester: 'rita', reason: 'test', ...input }],
    typedSearchAttributes: [
      { key: defineSearchAttributeKey('RunbookName', SearchAttributeType.KEYWORD), value: runbook },
      { key: defineSearchAttributeKey('Environment', SearchAttributeType.KEYWORD), value: input.environment },
      { key: defineSearchAttributeKey('Target', SearchAttributeType.KEYWORD), value: String(input.target ?? 'app') },
    ],
  });
}
