import type { WorkflowHandle } from '@temporalio/client';
import type { Timestamp } from '@temporalio/common';

/** A history event time (or a describe() time) in epoch ms; NaN when absent. */
export function tsMs(ts: Timestamp | null | undefined): number {
  if (!ts) return NaN;
  const seconds = ts.seconds ?? 0;
  return (typeof seconds === 'number' ? seconds : seconds.toNumber()) * 1000 + (ts.nanos ?? 0) / 1e6;
}

/** The history's events, its start and completion times, each completed activity (type, time, result) in order, and the time its tasks waited for dispatch. */
export async function historyOf(handle: WorkflowHandle) {
  const history = await handle.fetchHistory();
  const events = history.events ?? [];
  const scheduled = new Map<string, string>();
  for (const e of events) {
    if (e.activityTaskScheduledEventAttributes)
      scheduled.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
  }
  // task dispatch wait: each workflow/activity task's Scheduled → Started
  const at = new Map<string, number>(events.map((e) => [String(e.eventId), tsMs(e.eventTime)]));
  let dispatchMs = 0;
  for (const e of events) {
    const scheduledId =
      e.workflowTaskStartedEventAttributes?.scheduledEventId ?? e.activityTaskStartedEventAttributes?.scheduledEventId;
    if (scheduledId != null) dispatchMs += tsMs(e.eventTime) - (at.get(String(scheduledId)) ?? NaN);
  }
  const started = events.find((e) => e.workflowExecutionStartedEventAttributes);
  const completed = events.find((e) => e.workflowExecutionCompletedEventAttributes);
  const activities = events
    .filter((e) => e.activityTaskCompletedEventAttributes)
    .map((e) => ({
      type: scheduled.get(String(e.activityTaskCompletedEventAttributes!.scheduledEventId)) ?? '?',
      at: tsMs(e.eventTime),
      result: e.activityTaskCompletedEventAttributes!.result?.payloads?.[0],
    }));
  return {
    events,
    startedAt: tsMs(started?.eventTime),
    completedAt: tsMs(completed?.eventTime),
    activities,
    dispatchMs,
  };
}
