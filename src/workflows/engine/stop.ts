import { ActivityFailure, ChildWorkflowFailure } from '@temporalio/workflow';
import type { Outcome } from '../../shared/constants.js';

/** Thrown inside a run to end it early with a decided outcome (rejection, timeout, dry run, busy target). */
export class RunbookStop extends Error {
  constructor(
    readonly outcome: Outcome,
    message: string,
  ) {
    super(message);
    this.name = 'RunbookStop';
  }
}

/** The innermost message of a failure (an activity's own error, not "Activity task failed"). */
export function errorMessage(err: unknown): string {
  if ((err instanceof ActivityFailure || err instanceof ChildWorkflowFailure) && err.cause)
    return errorMessage(err.cause);
  if (err instanceof Error) return err.message;
  return String(err);
}

export const nowIso = (): string => new Date().toISOString();
