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

npmPackages();
temporalCli();
