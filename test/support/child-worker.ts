import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort } from '../../src/dev/ports.js';
import { repoRoot } from '../../src/dev/temporal-server.js';

/** Whose world a child worker joins: a Harness (or the bench's own), as environment variables. */
export interface ChildEnv {
  env(extra?: Record<string, string>): NodeJS.ProcessEnv;
}

export interface ChildWorkerOptions {
  /** the worker's entry, relative to the repository (default: `npm run worker`'s, src/worker/main.ts) */
  entry?: string;
  /** the line of its output (stdout or stderr) that says it polls (default: the "worker ready" log line) */
  isReady?: (line: string) => boolean;
  /** also append its output to this file */
  logFile?: string;
}

export interface ChildWorker {
  child: ChildProcess;
  metricsPort: number;
  /** Date.now() at the spawn and when the ready line came */
  spawnedAt: number;
  readyAt: number;
  readyLine: string;
}

/** `npm run worker`'s entry (src/worker/main.ts) in a child process, ready to be SIGKILLed. */
export async function startChildWorker(
  h: ChildEnv,
  children: ChildProcess[],
  metricsPort = 0,
  extraEnv: Record<string, string> = {},
  options: ChildWorkerOptions = {},
): Promise<ChildWorker> {
  const port = metricsPort || (await freePort());
  const isReady = options.isReady ?? ((line: string) => line.includes('worker ready'));
  const spawnedAt = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, options.entry ?? 'src/worker/main.ts')], {
    cwd: repoRoot,
    // as `npm run worker`: libuv threads enough for a replay batch's concurrent fdatasyncs
    env: h.env({
      METRICS_PORT: String(port),
      LOG_LEVEL: 'info',
      UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '64',
      ...extraEnv,
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const log = options.logFile ? createWriteStream(options.logFile, { flags: 'a' }) : undefined;
  child.once('close', () => log?.end());
  return new Promise((resolve, reject) => {
    let output = '';
    let ready = false;
    const timer = setTimeout(() => reject(new Error(`worker not ready: ${output}`)), 60_000);
    // read to the end either way: a full pipe would stop the worker
    const onLine = (line: string) => {
      log?.write(`${line}\n`);
      if (ready) return;
      output += `${line}\n`;
      if (!isReady(line)) return;
      ready = true;
      clearTimeout(timer);
      resolve({ child, metricsPort: port, spawnedAt, readyAt: Date.now(), readyLine: line });
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    child.once('close', (code, signal) => {
      if (ready) return;
      clearTimeout(timer);
      reject(new Error(`worker exited ${code ?? signal}: ${output}`));
    });
  });
}

export function sigkill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}
