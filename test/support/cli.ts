import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { temporalCli } from '../../src/dev/temporal-server.js';

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A child process still running: its output so far, and its end. */
export interface Live {
  stdout: () => string;
  done: Promise<Run>;
}

function spawnRun(file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 90_000): Live {
  const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  return { stdout: () => stdout, done };
}

const run = (file: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> => spawnRun(file, args, env).done;

const cliArgs = (args: string[]): string[] => [join(process.cwd(), 'bin', 'runbook.js'), ...args];

/** Our CLI as a child process that keeps running (`watch`): read its output while it runs, then await its end. */
export const runbookLive = (args: string[], env: NodeJS.ProcessEnv, timeoutMs = 180_000): Live =>
  spawnRun(process.execPath, cliArgs(args), env, timeoutMs);

/** Resolves once the live process has printed `text`; fails if it ends first. */
export async function printed(live: Live, text: string): Promise<string> {
  let ended: Run | undefined;
  void live.done.then((r) => (ended = r)).catch(() => undefined);
  while (!live.stdout().includes(text)) {
    if (ended)
      throw new Error(`ended (code ${ended.code}) without printing "${text}":\n${ended.stdout}\n${ended.stderr}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return live.stdout();
}

/** Our CLI exactly as `npx runbook` runs it (bin/runbook.js), as a child process. */
export const runbook = (args: string[], env: NodeJS.ProcessEnv): Promise<Run> =>
  run(process.execPath, cliArgs(args), env);

/** The real `temporal` CLI against the test server. */
export const temporal = (args: string[], address: string): Promise<Run> =>
  run(temporalCli, [...args, '--address', address], process.env);

/** `temporal workflow start` exactly as an operator types it: no search attributes, no busy check. */
export const temporalStart = (
  h: { address: string; taskQueue: string },
  type: string,
  id: string,
  input: Record<string, unknown>,
): Promise<Run> =>
  temporal(
    [
      'workflow',
      'start',
      '--type',
      type,
      '--task-queue',
      h.taskQueue,
      '--workflow-id',
      id,
      '--input',
      JSON.stringify(input),
    ],
    h.address,
  );

/** `runbook start feature-flag-rollback` on `<env>/web` with this input JSON, and any further flags. */
export const startFlagRollback = (env: string, input: string, ...more: string[]): string[] => [
  'start',
  'feature-flag-rollback',
  '--env',
  env,
  '--target',
  'web',
  '--input',
  input,
  ...more,
];
