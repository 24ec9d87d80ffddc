import { ApplicationFailure, sleep } from '@temporalio/workflow';
import type { BackendWindow, MigrationActivities } from '../../activities/migration/index.js';
import { ErrorType } from '../../shared/constants.js';
import { formatDuration, parseDuration } from '../../shared/duration.js';
import { runbookActivities } from '../engine/activity-options.js';

// a look takes milliseconds: a worker that dies during one is noticed within a minute, not the preset's ten
const acts = runbookActivities<MigrationActivities>('quick', { startToCloseTimeout: '1 minute' });

export interface SoakProgress {
  /** what is soaking: "cut-over 25%" */
  label: string;
  /** fixed when the window starts (workflow time, in history): a worker restart neither shortens nor restarts it */
  deadline: string;
  window: string;
  looks: number;
  leftMs: number;
  last?: { healthy: boolean; breaches: string[]; backends: Record<string, BackendWindow>; healthProblem?: string };
}

export interface SoakOptions {
  label: string;
  window: string;
  interval: string;
  /** consecutive unhealthy answers that fail the soak */
  unhealthyLooks: number;
  onProgress(progress: SoakProgress): void;
}

/**
 * The soak after a forward step: a durable timer between looks (src/workflows/sqlite/monitor.ts pattern), each
 * look the health endpoint and the error rate and mean latency per backend since the window started. Fails
 * (SoakFailed, saying which check) at the first look past a threshold or after `unhealthyLooks` unhealthy answers
 * in a row; returns the last look when the window is over.
 */
export async function soakWindow(ref: { environment: string; target: string }, o: SoakOptions): Promise<SoakProgress> {
  const since = await acts.readMetrics(ref);
  const windowMs = parseDuration(o.window);
  const intervalMs = Math.min(parseDuration(o.interval), Math.max(windowMs, 1));
  const started = Date.now();
  const end = started + windowMs;
  const progress: SoakProgress = {
    label: o.label,
    deadline: new Date(end).toISOString(),
    window: o.window,
    looks: 0,
    leftMs: windowMs,
  };
  o.onProgress(progress);
  let unhealthyInARow = 0;
  for (;;) {
    await sleep(Math.min(intervalMs, Math.max(end - Date.now(), 0)));
    const look = await acts.soakLook({ ...ref, since });
    unhealthyInARow = look.healthy ? 0 : unhealthyInARow + 1;
    progress.looks += 1;
    progress.leftMs = Math.max(end - Date.now(), 0);
    progress.last = {
      healthy: look.healthy,
      breaches: look.breaches,
      backends: look.backends,
      ...(look.healthProblem ? { healthProblem: look.healthProblem } : {}),
    };
    o.onProgress(progress);
    const failed = look.breaches.length
      ? look.breaches.join('; ')
      : unhealthyInARow >= o.unhealthyLooks
        ? `unhealthy ${unhealthyInARow} looks in a row: ${look.healthProblem ?? ''}`
        : undefined;
    if (failed)
      throw ApplicationFailure.nonRetryable(
        `soak of ${o.label} failed at look ${progress.looks} (${formatDuration(Date.now() - started)} into ${o.window}): ${failed}`,
        ErrorType.SoakFailed,
      );
    if (Date.now() >= end) return progress;
  }
}
