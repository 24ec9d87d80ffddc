import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../shared/constants.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const temporalCli = join(repoRoot, '.tools', 'bin', 'temporal');

export const DEV_SERVER_DYNAMIC_CONFIG: Record<string, number> = { 'history.transferProcessorMaxPollRPS': 1000 };

export interface DevServer {
  address: string;
  uiUrl?: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export interface DevServerOptions {
  port: number;
  /** Web UI port; omit for a headless server */
  uiPort?: number;
  /** persistent SQLite file; omit for in-memory */
  dbFile?: string;
  logFile: string;
}

/**
 * Starts `temporal server start-dev` (built by scripts/setup.mjs) with our search attributes registered,
 * and waits until its frontend answers.
 */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  if (!existsSync(temporalCli)) throw new Error(`${temporalCli} is missing: run \`npm run setup\` first`);
  mkdirSync(dirname(options.logFile), { recursive: true });
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(options.port), '--log-level', 'warn'];
  if (options.uiPort) args.push('--ui-port', String(options.uiPort));
  else args.push('--headless');
  if (options.dbFile) {
    mkdirSync(dirname(options.dbFile), { recursive: true });
    args.push('--db-filename', options.dbFile);
  }
  for (const name of SEARCH_ATTRIBUTES) args.push('--search-attribute', `${name}=Keyword`);
  // the dev server polls its transfer queue at most 20×/s by default, adding up to ~50 ms to every task
  // handoff; a runbook is a sequence of small tasks, so let it poll faster (see BENCHMARKS.md)
  for (const [key, value] of Object.entries(DEV_SERVER_DYNAMIC_CONFIG))
    args.push('--dynamic-config-value', `${key}=${value}`);
  const out = openSync(options.logFile, 'a');
  const child = spawn(temporalCli, args, { stdio: ['ignore', out, out] });
  const address = `127.0.0.1:${options.port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`temporal dev server exited with ${child.exitCode}; see ${options.logFile}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      await connection.workflowService.getSystemInfo({});
      await connection.close();
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(
          `temporal dev server did not answer on ${address}: ${(err as Error).message}; see ${options.logFile}`,
        );
      }
      await delay(250);
    }
  }
  return { address, uiUrl: options.uiPort ? `http://localhost:${options.uiPort}` : undefined, process: child, stop };
}
