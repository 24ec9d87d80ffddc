import { ApplicationFailure, sleep } from '@temporalio/workflow';
import type { SqliteActivities } from '../../activities/sqlite/index.js';
import { ErrorType } from '../../shared/constants.js';
import { parseDuration } from '../../shared/duration.js';
import { runbookActivities } from '../engine/activity-options.js';

// a look takes milliseconds: a worker that dies during one is noticed within a minute, not the preset's ten
const acts = runbookActivities<SqliteActivities>('quick', { startToCloseTimeout: '1 minute' });

export interface MonitorResult {
  windowMs: number;
  looks: number;
  unhealthyLooks: number;
  errors: number;
  sample: string[];
}

/**
 * The post-rollback monitoring window (seed §2.4 step 6, §7.1 "monitor for errors, 30 minutes continuous"): a
 * durable timer between looks, so a worker restart neither shortens nor restarts the window. Fails
 * (VerificationFailed) at the first look past `maxErrors` error lines, or after two unhealthy looks in a row.
 */
export async function monitorWindow(
  ref: { environment: string; target: string },
  o: { window: string; interval: string; maxErrors: number },
): Promise<MonitorResult> {
  const windowMs = parseDuration(o.window);
  const intervalMs = Math.min(parseDuration(o.interval), Math.max(windowMs, 1));
  const cursor = await acts.errorLogCursor(ref);
  const result: MonitorResult = { windowMs, looks: 0, unhealthyLooks: 0, errors: 0, sample: [] };
  let unhealthyInARow = 0;
  const end = Date.now() + windowMs;
  for (;;) {
    await sleep(Math.min(intervalMs, Math.max(end - Date.now(), 0)));
    const look = await acts.monitorSqliteOnce({ ...ref, cursor });
    result.looks += 1;
    result.errors = look.errors;
    result.sample = look.sample;
    if (!look.healthy) {
      result.unhealthyLooks += 1;
      unhealthyInARow += 1;
    } else unhealthyInARow = 0;
    if (look.errors > o.maxErrors)
      throw ApplicationFailure.nonRetryable(
        `${look.errors} error lines within the monitoring window (at most ${o.maxErrors}): ${look.sample.join(' | ')}`,
        ErrorType.VerificationFailed,
      );
    if (unhealthyInARow >= 2)
      throw ApplicationFailure.nonRetryable(
        `unhealthy twice in a row during the monitoring window: ${look.problem}`,
        ErrorType.VerificationFailed,
      );
    if (Date.now() >= end) return result;
  }
}
