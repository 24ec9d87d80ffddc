import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../../src/dev/ports.js';
import type { Harness } from './harness.js';

/** `npm run worker`'s entry (src/worker/main.ts) in a child process, ready to be SIGKILLed. */
export async function startChildWorker(
  h: Harness,
  children: ChildProcess[],
  metricsPort = 0,
  extraEnv: Record<string, string> = {},
): Promise<{ child: ChildProcess; metricsPort: number }> {
  const port = metricsPort || (await freePort());
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/worker/main.ts'], {
    env: h.env({ METRICS_PORT: String(port), LOG_LEVEL: 'info', ...extraEnv }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 60_000;
  while (!output.includes('worker ready')) {
    if (child.exitCode !== null) throw new Error(`worker exited ${child.exitCode}: ${output}`);
    if (Date.now() > deadline) throw new Error(`worker not ready: ${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, metricsPort: port };
}

export function sigkill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}
