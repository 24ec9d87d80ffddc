import { ErrorType } from '../../shared/constants.js';
import { execFile } from 'node:child_process';
import { ApplicationFailure } from '@temporalio/common';
import type { CommandRunner } from './types.js';

const MAX_OUTPUT = 32 * 1024 * 1024;

/** The rejection of a command that ran but failed: carries its output for callers that read it (e.g. `systemctl is-active`). */
export interface CommandError extends Error {
  stdout: string;
  stderr: string;
}

export function isCommandError(error: unknown): error is CommandError {
  return error instanceof Error && typeof (error as Partial<CommandError>).stdout === 'string';
}

/**
 * The one way adapters run external commands: execFile with an argument array, no shell, bounded time and
 * output. A missing executable is a configuration error (not retried); a failing command is retried by the
 * activity's retry policy.
 */
export const runCommand: CommandRunner = (file, args, options = {}) =>
  new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        env: options.env ?? process.env,
        cwd: options.cwd,
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: MAX_OUTPUT,
        encoding: 'utf8',
      },
      (error, stdout, stderr) => {
        if (!error) return resolve({ stdout, stderr });
        const code = (error as NodeJS.ErrnoException).code;
        const printable = [file, ...args].join(' ');
        if (code === 'ENOENT') {
          return reject(
            ApplicationFailure.nonRetryable(
              `executable "${file}" not found on PATH (running: ${printable})`,
              ErrorType.CommandRefused,
            ),
          );
        }
        const detail = (stderr || stdout || error.message).trim().split('\n').slice(-5).join('\n');
        const failure: CommandError = Object.assign(
          new Error(`command failed (${printable}): exit ${String(error.code ?? error.signal)}: ${detail}`),
          { stdout, stderr },
        );
        reject(failure);
      },
    );
  });

/** Env for commands that talk to a cluster: KUBECONFIG from the variable the environment file names. */
export function kubeEnv(kubeconfigEnv?: string): NodeJS.ProcessEnv {
  if (!kubeconfigEnv) return process.env;
  const path = process.env[kubeconfigEnv];
  if (!path) {
    throw ApplicationFailure.nonRetryable(
      `the worker's environment variable ${kubeconfigEnv} (named by kubeconfigEnv) is not set`,
      ErrorType.EnvironmentInvalid,
    );
  }
  return { ...process.env, KUBECONFIG: path };
}
