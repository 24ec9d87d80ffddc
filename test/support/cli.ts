import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { temporalCli } from '../../src/dev/temporal-server.js';

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 90_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Our CLI exactly as `npx runbook` runs it (bin/runbook.js), as a child process. */
export const runbook = (args: string[], env: NodeJS.ProcessEnv): Promise<Run> =>
  run(process.execPath, [join(process.cwd(), 'bin', 'runbook.js'), ...args], env);

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
