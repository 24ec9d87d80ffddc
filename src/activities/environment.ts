import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { parse as parseYaml } from 'yaml';
import {
  describeZodError,
  environmentSchema,
  nameSchema,
  type EnvironmentFile,
  type TargetConfig,
} from '../shared/schemas.js';

export interface LoadedEnvironment {
  name: string;
  file: string;
  config: EnvironmentFile;
  /** resolves a path from the file relative to the file's own directory */
  resolvePath(path: string): string;
}

export interface LoadedTarget extends LoadedEnvironment {
  targetName: string;
  target: TargetConfig;
}

export class EnvironmentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnvironmentInvalid';
  }
}

/** Reads and validates `environments/<name>.yaml`; every problem names the file and the field. */
export async function loadEnvironment(dir: string, name: string): Promise<LoadedEnvironment> {
  const checkedName = nameSchema.safeParse(name);
  if (!checkedName.success)
    throw new EnvironmentError(`environment name "${name}": ${describeZodError(checkedName.error)}`);
  const file = resolve(dir, `${name}.yaml`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new EnvironmentError(`unknown environment "${name}": ${file} does not exist`);
    throw err;
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new EnvironmentError(`${file}: not valid YAML: ${(err as Error).message}`);
  }
  const parsed = environmentSchema.safeParse(raw);
  if (!parsed.success) throw new EnvironmentError(`${file}: ${describeZodError(parsed.error)}`);
  if (parsed.data.name && parsed.data.name !== name) {
    throw new EnvironmentError(`${file}: name: "${parsed.data.name}" does not match the file name "${name}"`);
  }
  const base = dirname(file);
  return { name, file, config: parsed.data, resolvePath: (p) => (isAbsolute(p) ? p : join(base, p)) };
}

export async function loadTarget(dir: string, environment: string, target: string): Promise<LoadedTarget> {
  const env = await loadEnvironment(dir, environment);
  const config = env.config.targets[target];
  if (!config) {
    throw new EnvironmentError(
      `${env.file}: targets.${target}: unknown target (known: ${Object.keys(env.config.targets).join(', ')})`,
    );
  }
  return { ...env, targetName: target, target: config };
}

/** A target section a runbook needs (flags, service, health, dualWrite); missing is a configuration error. */
export function requireSection<K extends keyof TargetConfig>(t: LoadedTarget, key: K): NonNullable<TargetConfig[K]> {
  const section = t.target[key];
  if (section === undefined)
    throw new EnvironmentError(`${t.file}: targets.${t.targetName}.${String(key)}: required by this runbook`);
  return section as NonNullable<TargetConfig[K]>;
}

/** Inside activities: configuration errors are final, never retried. */
export async function withEnvironmentErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof EnvironmentError) throw ApplicationFailure.nonRetryable(err.message, 'EnvironmentInvalid');
    throw err;
  }
}
