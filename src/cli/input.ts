import { readFile } from 'node:fs/promises';
import { ApplicationFailure, SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { EnvironmentError, approvalPolicyOf, loadTarget } from '../activities/environment.js';
import { ErrorType } from '../shared/constants.js';
import { tightenApproval, tightenDuration } from '../shared/input.js';
import type { RunbookDefinition, RunbookInputBase } from '../shared/runbooks.js';
import { describeZodError } from '../shared/schemas.js';
import { CliError } from './errors.js';

// What every way of starting a runbook from the CLI (`start`, `schedule create`) checks before anything exists.

const keys = {
  RunbookName: defineSearchAttributeKey('RunbookName', SearchAttributeType.KEYWORD),
  Environment: defineSearchAttributeKey('Environment', SearchAttributeType.KEYWORD),
  Target: defineSearchAttributeKey('Target', SearchAttributeType.KEYWORD),
};

/** The search attributes a run of `runbook` on environment/target carries (filters, the busy-target check). */
export const runbookSearchAttributes = (runbook: string, environment: string, target: string) => [
  { key: keys.RunbookName, value: runbook },
  { key: keys.Environment, value: environment },
  { key: keys.Target, value: target },
];

/** A JSON object given inline or as @file, for the option `flag`. */
export async function parseInput(text: string | undefined, flag = '--input'): Promise<Record<string, unknown>> {
  if (!text) return {};
  const raw = text.startsWith('@')
    ? await readFile(text.slice(1), 'utf8').catch(() => {
        throw new CliError(`${flag}: cannot read ${text.slice(1)}`);
      })
    : text;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new CliError(`${flag}: malformed JSON: ${(err as Error).message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new CliError(`${flag}: must be a JSON object`);
  return value as Record<string, unknown>;
}

/**
 * The runbook's schema, then the environment: it exists, has the target, and the input only tightens its policy.
 * The workflow checks all of this too; here the operator learns it before anything starts. Usage errors.
 */
export async function validateRunbookInput(
  def: RunbookDefinition,
  input: Record<string, unknown>,
  environmentsDir: string,
): Promise<RunbookInputBase> {
  const parsed = def.schema.safeParse(input);
  if (!parsed.success) throw new CliError(`invalid input: ${describeZodError(parsed.error)}`);
  const { environment, target } = parsed.data;
  try {
    const t = await loadTarget(environmentsDir, environment, target);
    if (def.requiresSection && !t.target[def.requiresSection])
      throw new CliError(
        `invalid environment: ${t.file}: targets.${target} has no ${def.requiresSection} section (the runbook acts on it)`,
      );
    tightenApproval(approvalPolicyOf(t), parsed.data.approval);
    tightenDuration('lockWait', t.config.lockWait, parsed.data.lockWait);
  } catch (err) {
    if (err instanceof EnvironmentError) throw new CliError(`invalid environment: ${err.message}`);
    if (err instanceof ApplicationFailure && err.type === ErrorType.InvalidInput) throw new CliError(err.message);
    throw err;
  }
  return parsed.data;
}
