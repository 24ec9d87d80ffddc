import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { parse as parseYaml } from 'yaml';
import { ErrorType } from '../shared/constants.js';
import { PUBLIC_KEY_PATTERN } from '../shared/decisions.js';
import type { ApprovalPolicy } from '../shared/types.js';
import { keyIdOf } from './keys.js';
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
    this.name = ErrorType.EnvironmentInvalid;
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
  const resolvePath = (p: string) => (isAbsolute(p) ? p : join(base, p));
  const config = parsed.data;
  for (const key of config.approval.keys) {
    if (key.keyFile)
      key.publicKey = await readKeyLine(file, `approval: ${key.name}'s keyFile`, resolvePath(key.keyFile));
  }
  return { name, file, config, resolvePath };
}

/** A public key line kept in a file the environment names. */
export async function readKeyLine(file: string, field: string, path: string): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => {
    throw new EnvironmentError(
      `${file}: ${field}: cannot read ${path} (runbook keys init / show prints the line it holds)`,
    );
  });
  const line = text.trim();
  if (!PUBLIC_KEY_PATTERN.test(line))
    throw new EnvironmentError(`${file}: ${field}: ${path} does not hold an "ed25519:…" line`);
  return line;
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

/** The environment's approval policy as the workflow gets it: every signer's key with its id. */
export function approvalPolicyOf(env: LoadedEnvironment): ApprovalPolicy {
  const { keys, ...policy } = env.config.approval;
  return {
    ...policy,
    keys: keys.map((k) => ({ name: k.name, publicKey: k.publicKey!, keyId: keyIdOf(k.publicKey!) })),
  };
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
    if (err instanceof EnvironmentError)
      throw ApplicationFailure.nonRetryable(err.message, ErrorType.EnvironmentInvalid);
    throw err;
  }
}
