import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { EXIT_USAGE } from '../shared/constants.js';
import { statusQuery } from '../shared/messages.js';
import type { RunbookStatus } from '../shared/types.js';
import { loadConfig } from '../worker/config.js';
import { connect, finished } from './client.js';
import { runningChild } from './format.js';

/** An expected error: printed as one line, exit code as given, no stack trace. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = EXIT_USAGE,
  ) {
    super(message);
  }
}

export async function withClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const { client, close } = await connect().catch((err: Error) => {
    throw new CliError(`cannot reach Temporal at ${loadConfig().address}: ${err.message}`, 1);
  });
  try {
    return await fn(client);
  } finally {
    await close();
  }
}

/** The run's status: from the query, or from its result when it is closed and no worker answers. */
export async function queryStatus(client: Client, id: string): Promise<RunbookStatus> {
  const handle = client.workflow.getHandle(id);
  try {
    return await handle.query(statusQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new CliError(`no workflow with id "${id}"`, 1);
    const description = await handle.describe().catch(() => undefined);
    if (description && description.status.name !== 'RUNNING') {
      const { result } = await finished(handle);
      if (result) return result;
    }
    throw new CliError(`cannot query ${id}: ${(err as Error).message} (is a worker running on its task queue?)`, 1);
  }
}

/** The status of the child a chain (triage) waits on now, if any: what it waits for, e.g. its own approval. */
export async function runningChildStatus(client: Client, status: RunbookStatus): Promise<RunbookStatus | undefined> {
  const running = runningChild(status);
  return running && (await queryStatus(client, running.workflowId).catch(() => undefined));
}
