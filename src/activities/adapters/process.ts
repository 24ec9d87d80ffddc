import { spawn } from 'node:child_process';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { ServiceAdapter, ServiceState } from './types.js';

export interface ProcessServiceConfig {
  pidFile: string;
  command: string[];
  cwd?: string;
  logFile?: string;
  reload: 'sighup' | 'restart';
  stopTimeoutMs: number;
  /** the process's whole environment (default: the allow-listed basics only, see serviceEnvironment) */
  env?: NodeJS.ProcessEnv;
}

/** What every managed process may see of the worker's environment: nothing secret. */
export const BASE_SERVICE_ENV = [
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'LANG',
  'LC_ALL',
  'LC_CTYPE',
  'TZ',
  'TMPDIR',
];

/**
 * The environment a managed process starts with: the allow-listed basics, the worker's variables the target
 * names in `passEnv`, and the literal `env` values — never the worker's own credentials wholesale.
 */
export function serviceEnvironment(
  passEnv: string[],
  values: Record<string, string>,
  from: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of [...BASE_SERVICE_ENV, ...passEnv]) if (from[name] !== undefined) env[name] = from[name];
  return { ...env, ...values };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A local process managed through its pid file: start (detached), stop, SIGHUP reload, restart. */
export class ProcessService implements ServiceAdapter {
  constructor(private readonly config: ProcessServiceConfig) {}

  describe(): string {
    return `process ${this.config.command.join(' ')} (pid file ${this.config.pidFile})`;
  }

  async pid(): Promise<number | undefined> {
    const text = await readFile(this.config.pidFile, 'utf8').catch(() => '');
    const pid = Number.parseInt(text.trim(), 10);
    return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
  }

  async status(): Promise<ServiceState> {
    const pid = await this.pid();
    return pid ? { running: true, detail: `pid ${pid}` } : { running: false, detail: 'not running' };
  }

  async start(): Promise<void> {
    if (await this.pid()) return;
    const [file, ...args] = this.config.command as [string, ...string[]];
    let stdio: 'ignore' | ['ignore', number, number] = 'ignore';
    let log: Awaited<ReturnType<typeof open>> | undefined;
    if (this.config.logFile) {
      await mkdir(dirname(this.config.logFile), { recursive: true });
      log = await open(this.config.logFile, 'a');
      stdio = ['ignore', log.fd, log.fd];
    }
    try {
      const child = spawn(file, args, {
        cwd: this.config.cwd,
        env: this.config.env ?? serviceEnvironment([], {}),
        detached: true,
        stdio,
      });
      const pid = await new Promise<number>((resolve, reject) => {
        child.once('error', reject);
        child.once('spawn', () => resolve(child.pid!));
      });
      child.unref();
      await mkdir(dirname(this.config.pidFile), { recursive: true });
      await writeFile(this.config.pidFile, `${pid}\n`);
    } finally {
      await log?.close();
    }
  }

  async stop(): Promise<void> {
    const pid = await this.pid();
    if (!pid) return;
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + this.config.stopTimeoutMs;
    while (alive(pid) && Date.now() < deadline) await delay(50);
    if (alive(pid)) process.kill(pid, 'SIGKILL');
    while (alive(pid)) await delay(20);
    await rm(this.config.pidFile, { force: true });
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async reload(): Promise<void> {
    if (this.config.reload === 'restart') return this.restart();
    const pid = await this.pid();
    if (!pid) throw new Error(`${this.describe()}: not running, cannot send SIGHUP`);
    process.kill(pid, 'SIGHUP');
  }
}
