#!/usr/bin/env node
// Installs what a fresh clone is missing: npm packages and the Temporal CLI (dev server + Web UI).
// The Temporal CLI is built from Go modules (no binary downloads reach this network) into .tools/bin and
// cached under ~/.cache/durable-runbooks so other clones on the same machine reuse it.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const version = pkg.config.temporalCliVersion;
const log = (msg) => process.stderr.write(`[setup] ${msg}\n`);

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

/**
 * The sqlite-recovery runbook's .recover path runs `sqlite3` (SQLITE3_BIN, else on PATH). Without a sqlite3 that
 * can run .recover it restores the latest verified backup instead and says so: this only tells what is missing.
 */
function sqlite3Recover() {
  const cmd = process.env.SQLITE3_BIN || 'sqlite3';
  const quiet = { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] };
  let version;
  try {
    version = execFileSync(cmd, ['-version'], quiet).trim().split(/\s+/)[0];
  } catch {
    log(
      `sqlite3 missing: "${cmd}" does not run. sqlite-recovery (corruption) cannot try .recover and restores the ` +
        'latest verified backup instead. Install the sqlite3 command (Debian: apt-get install sqlite3) or set SQLITE3_BIN.',
    );
    return;
  }
  try {
    execFileSync(cmd, [':memory:', 'SELECT count(*) FROM sqlite_dbpage'], quiet);
  } catch {
    log(
      `${cmd} ${version} cannot run .recover: its SQLite library has no sqlite_dbpage table (SQLITE_ENABLE_DBPAGE_VTAB; ` +
        "Debian's libsqlite3 is built without it). sqlite-recovery (corruption) restores the latest verified backup " +
        'instead. For .recover, set SQLITE3_BIN to a sqlite3 built from the SQLite sources (its shell build enables it).',
    );
  }
}

npmPackages();
temporalCli();
sqlite3Recover();
