#!/usr/bin/env node
// The demo target: a small HTTP service that reads its flags from an env file (re-read on SIGHUP), serves
// /health, /flags and /stats, accepts POST /write, and logs `dual_write_scheduled` per write while dual-write is on.
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { readEnvFile } from './read-env-file.mjs';

const { values: args } = parseArgs({
  options: {
    'env-file': { type: 'string' },
    port: { type: 'string', default: '8787' },
    // writes are recorded in PostgreSQL when the variable named here holds a connection string
    'database-url-env': { type: 'string', default: 'DEMO_DATABASE_URL' },
    table: { type: 'string', default: 'demo_writes' },
  },
});
const envFile = args['env-file'];
if (!envFile) {
  console.error('usage: service.mjs --env-file <path> [--port N]');
  process.exit(2);
}

function readFlags() {
  return readEnvFile(envFile);
}

const databaseUrl = process.env[args['database-url-env']];
if (!/^[a-z_][a-z0-9_]{0,62}$/.test(args.table)) {
  console.error(`--table must be a plain lowercase identifier, got ${args.table}`);
  process.exit(2);
}
let db;
if (databaseUrl) {
  const { default: pg } = await import('pg');
  db = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  await db.query(
    `CREATE TABLE IF NOT EXISTS ${args.table} (id bigserial PRIMARY KEY, write_id integer NOT NULL, backend text NOT NULL, pid integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
  );
}

/** legacy unless legacy writes are blocked; vnext while dual-write is on (or when vnext is the only writer) */
async function record(id, backends) {
  if (!db || backends.length === 0) return;
  await db.query(`INSERT INTO ${args.table} (write_id, backend, pid) SELECT $1, unnest($2::text[]), $3`, [
    id,
    backends,
    process.pid,
  ]);
}

const log = (msg) => process.stdout.write(`${new Date().toISOString()} pid=${process.pid} ${msg}\n`);
let flags = readFlags();
const stats = { pid: process.pid, reloads: 0, flagChanges: 0, writes: 0, dualWrites: 0, legacyWritesBlocked: 0 };
const on = (name) => String(flags[name]).toLowerCase() === 'true';

process.on('SIGHUP', () => {
  const next = readFlags();
  stats.reloads += 1;
  if (JSON.stringify(next) !== JSON.stringify(flags)) stats.flagChanges += 1;
  flags = next;
  log(`config reloaded (reload #${stats.reloads}): ${JSON.stringify(flags)}`);
});

const server = createServer((req, res) => {
  const json = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.method === 'GET' && req.url === '/health') return json(200, { status: 'healthy' });
  if (req.method === 'GET' && req.url === '/flags') return json(200, flags);
  if (req.method === 'GET' && req.url === '/stats') return json(200, stats);
  if (req.method === 'POST' && req.url === '/write') {
    stats.writes += 1;
    const id = stats.writes;
    const backends = [];
    if (on('TEAM_VNEXT_LEGACY_WRITE_BLOCKED')) stats.legacyWritesBlocked += 1;
    else backends.push('legacy');
    if (on('TEAM_VNEXT_DUAL_WRITE_ENABLED')) {
      stats.dualWrites += 1;
      backends.push('vnext');
      log(`dual_write_scheduled write_id=${id} strict=${on('TEAM_VNEXT_DUAL_WRITE_STRICT_MODE')}`);
    }
    record(id, backends).then(
      () => json(200, { id, backends }),
      (err) => json(500, { id, error: err.message }),
    );
    return;
  }
  json(404, { error: 'not found' });
});

server.listen(Number(args.port), '127.0.0.1', () =>
  log(`demo service listening on 127.0.0.1:${args.port} flags=${JSON.stringify(flags)}`),
);
const stop = () =>
  server.close(async () => {
    await db?.end();
    process.exit(0);
  });
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
