import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { repoRoot, startDevServer, type DevServer } from '../src/dev/temporal-server.js';
import { bundleWorkflows } from '../src/worker/worker.js';
import { ensurePostgres, keepExitCode, type PostgresHandle } from '../src/dev/postgres.js';
import { freePort } from '../src/dev/ports.js';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    workflowBundlePath: string;
    databaseUrl: string;
  }
}

let server: DevServer | undefined;
let postgres: PostgresHandle | undefined;
let postgresDir: string | undefined;

/** One real Temporal dev server, one real Postgres (embedded, or DATABASE_URL) and one workflow bundle for the suite. */
export async function setup(project: TestProject): Promise<void> {
  const dir = join(repoRoot, '.data', 'test');
  mkdirSync(dir, { recursive: true });
  const [port, pgPort, code] = await Promise.all([freePort(), freePort(), bundleWorkflows()]);
  postgresDir = mkdtempSync(join(tmpdir(), 'durable-runbooks-pg-'));
  postgres = await ensurePostgres({ dataDir: postgresDir, port: pgPort, database: 'durable_runbooks_test' });
  // teardown stops the cluster; a failed test must still fail the run (exit code 1, not async-exit-hook's 0)
  keepExitCode();
  server = await startDevServer({ port, logFile: join(dir, 'temporal.log') });
  const bundle = join(dir, 'workflow-bundle.js');
  writeFileSync(bundle, code);
  project.provide('temporalAddress', server.address);
  project.provide('workflowBundlePath', bundle);
  project.provide('databaseUrl', postgres.url);
}

export async function teardown(): Promise<void> {
  await server?.stop();
  await postgres?.stop();
  if (postgresDir) rmSync(postgresDir, { recursive: true, force: true });
}
