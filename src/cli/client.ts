import { Client, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure, TerminatedFailure } from '@temporalio/common';
import { loadConfig } from '../worker/config.js';
import { EXIT_CODES, type Outcome } from '../shared/constants.js';
import type { RunbookResult } from '../shared/types.js';

export async function connect(): Promise<{
  client: Client;
  config: ReturnType<typeof loadConfig>;
  close: () => Promise<void>;
}> {
  const config = loadConfig();
  const connection = await Connection.connect({ address: config.address, connectTimeout: 5000 });
  return { client: new Client({ connection, namespace: config.namespace }), config, close: () => connection.close() };
}

export interface Finished {
  outcome: Outcome;
  result?: RunbookResult;
  message?: string;
}

/** Waits for the run to close and maps every way it can end to a runbook outcome. */
export async function finished(handle: WorkflowHandle): Promise<Finished> {
  try {
    const result = (await handle.result()) as RunbookResult;
    return { outcome: result.outcome, result };
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    const cause = err.cause;
    if (cause instanceof ApplicationFailure && cause.details?.[0] && typeof cause.details[0] === 'object') {
      const result = cause.details[0] as RunbookResult;
      return { outcome: result.outcome, result, message: cause.message };
    }
    if (cause instanceof CancelledFailure) return { outcome: 'cancelled', message: 'the workflow was cancelled' };
    if (cause instanceof TerminatedFailure)
      return { outcome: 'failed', message: 'the workflow was terminated: no compensation ran' };
    return { outcome: 'failed', message: cause?.message ?? err.message };
  }
}

export const exitCodeFor = (outcome: Outcome): number => EXIT_CODES[outcome];
