import { ApplicationFailure } from '@temporalio/common';
import type { z } from 'zod';
import { ErrorType } from './constants.js';
import { parseDuration } from './duration.js';
import { describeZodError } from './schemas.js';
import type { ApprovalPolicy } from './types.js';

/** Bad input: non-retryable, names the field, thrown before anything changes. */
export const invalidInput = (message: string): ApplicationFailure =>
  ApplicationFailure.nonRetryable(`invalid input: ${message}`, ErrorType.InvalidInput);

/** Validates a runbook's input (workflow side: every start path, not only our CLI, goes through this). */
export function parseRunbookInput<S extends z.ZodType>(schema: S, raw: unknown): z.output<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw invalidInput(describeZodError(parsed.error));
  return parsed.data;
}

/**
 * Input may only tighten the environment's policy: a higher quorum, a shorter approval timeout. A looser value
 * is InvalidInput naming the field (silently ignoring it would let an operator believe it applied).
 */
export function tightenApproval(env: ApprovalPolicy, input?: { quorum?: number; timeout?: string }): ApprovalPolicy {
  const quorum = input?.quorum ?? env.quorum;
  if (quorum < env.quorum) {
    throw invalidInput(
      `approval.quorum: ${quorum} is below the environment's ${env.quorum} (input may only tighten the policy)`,
    );
  }
  if (env.approvers.length > 0 && quorum > env.approvers.length) {
    throw invalidInput(`approval.quorum: ${quorum} exceeds the ${env.approvers.length} approvers of the environment`);
  }
  return { ...env, quorum, timeout: tightenDuration('approval.timeout', env.timeout, input?.timeout) };
}

/** At most the environment's duration. */
export function tightenDuration(field: string, env: string, input: string | undefined): string {
  if (input === undefined) return env;
  if (parseDuration(input) > parseDuration(env)) {
    throw invalidInput(
      `${field}: ${input} is longer than the environment's ${env} (input may only tighten the policy)`,
    );
  }
  return input;
}

/** At most the environment's limit (batch sizes, parallelism). */
export function tightenLimit(field: string, env: number, input: number | undefined): number {
  if (input === undefined) return env;
  if (input > env)
    throw invalidInput(`${field}: ${input} exceeds the environment's ${env} (input may only tighten the policy)`);
  return input;
}

/** At least the environment's duration (a monitoring window: input may only lengthen the watch). */
export function lengthenDuration(field: string, env: string, input: string | undefined): string {
  if (input === undefined) return env;
  if (parseDuration(input) < parseDuration(env)) {
    throw invalidInput(`${field}: ${input} is shorter than the environment's ${env} (input may only lengthen it)`);
  }
  return input;
}
