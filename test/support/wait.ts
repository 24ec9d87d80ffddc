import type { Client, WorkflowHandle } from '@temporalio/client';
import { statusQuery } from '../../src/shared/messages.js';
import type { RunbookStatus } from '../../src/shared/types.js';

/** Polls the status query until `predicate` holds. */
export async function waitForStatus(
  handle: WorkflowHandle,
  predicate: (s: RunbookStatus) => boolean,
  timeoutMs = 60_000,
): Promise<RunbookStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: RunbookStatus | undefined;
  for (;;) {
    try {
      last = await handle.query(statusQuery);
      if (predicate(last)) return last;
    } catch {
      // not yet queryable (no worker, or first task not processed)
    }
    if (Date.now() > deadline)
      throw new Error(`condition not reached; last status: ${JSON.stringify(last, null, 1)?.slice(0, 3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Polls `probe` every `intervalMs` until it gives a value (anything but undefined or false), and returns that value;
 * after `timeoutMs` an error naming `what`.
 */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Polls until the workflow (latest run) is closed; returns its status name. */
export async function waitForClosed(client: Client, workflowId: string, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status } = await client.workflow.getHandle(workflowId).describe();
    if (status.name !== 'RUNNING') return status.name;
    if (Date.now() > deadline) throw new Error(`${workflowId} still running`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** GET <base>/health: the status and body (status 0 and the error when nothing answers). */
export async function httpHealth(base: string): Promise<{ status: number; body: string }> {
  try {
    const r = await fetch(`${base}/health`);
    return { status: r.status, body: await r.text() };
  } catch (err) {
    return { status: 0, body: (err as Error).message };
  }
}
