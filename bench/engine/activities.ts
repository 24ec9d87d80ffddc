import { Context } from '@temporalio/activity';

export interface SleepProgress {
  doneMs: number;
}

export interface SleepResult {
  /** the attempt that finished the step (1 when no worker was lost) */
  attempt: number;
  /** the pid of the worker process that ran this attempt */
  pid: number;
  /** when this attempt started (epoch ms, this machine's clock) */
  attemptStartedAt: number;
  /** progress taken over from the previous attempt's last heartbeat */
  resumedFromMs: number;
  /** time this attempt slept */
  sleptMs: number;
}

/** The bench's own activities: a no-op and a sleep that heartbeats its progress (and resumes from it). */
export const createBenchActivities = () => ({
  async noop(): Promise<void> {},

  async sleepHeartbeating(input: { totalMs: number; everyMs: number }): Promise<SleepResult> {
    const ctx = Context.current();
    const attemptStartedAt = Date.now();
    const resumed = ctx.info.heartbeatDetails as SleepProgress | undefined;
    const progress: SleepProgress = { doneMs: resumed?.doneMs ?? 0 };
    const resumedFromMs = progress.doneMs;
    ctx.heartbeat(progress);
    while (progress.doneMs < input.totalMs) {
      const slice = Math.min(input.everyMs, input.totalMs - progress.doneMs);
      await ctx.sleep(slice);
      progress.doneMs += slice;
      ctx.heartbeat(progress);
    }
    return {
      attempt: ctx.info.attempt,
      pid: process.pid,
      attemptStartedAt,
      resumedFromMs,
      sleptMs: Date.now() - attemptStartedAt,
    };
  },
});

export type BenchActivities = ReturnType<typeof createBenchActivities>;
