import { ATTEMPT_MARKER } from '../../shared/constants.js';
import type { EvidenceRef, RunbookResult } from '../../shared/types.js';

/**
 * Reading a run's history as `temporal workflow show --output json` prints it (and `runbook evidence` exports it):
 * who the run was, the evidence it wrote (writeEvidence's result) and what it returned.
 */
type Event = Record<string, any>;
export interface HistoryJson {
  events?: Event[];
}

const decode = (payload: { data?: string } | undefined): unknown =>
  payload?.data === undefined ? undefined : JSON.parse(Buffer.from(payload.data, 'base64').toString('utf8'));

/** the worker tags activity results with their attempt (see ATTEMPT_MARKER) */
const unwrap = (value: unknown): unknown =>
  value && typeof value === 'object' && ATTEMPT_MARKER in value ? (value as unknown as { value: unknown }).value : value;

export function startedEvent(history: HistoryJson): { workflowType?: string; runId?: string } {
  const attrs = history.events?.[0]?.workflowExecutionStartedEventAttributes;
  return { workflowType: attrs?.workflowType?.name, runId: attrs?.originalExecutionRunId };
}

/** The input the run was started with (its first argument), when it is an object: what the operator typed. */
export function startedInput(history: HistoryJson): Record<string, unknown> | undefined {
  const attrs = history.events?.[0]?.workflowExecutionStartedEventAttributes;
  const input = decode(attrs?.input?.payloads?.[0]);
  return input && typeof input === 'object' && !Array.isArray(input) ? (input as Record<string, unknown>) : undefined;
}

/** Every evidence reference the run's writeEvidence activities returned, in order. */
export function evidenceRefsIn(history: HistoryJson): EvidenceRef[] {
  const events = history.events ?? [];
  const writes = new Set(
    events
      .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'writeEvidence')
      .map((e) => String(e.eventId)),
  );
  return events
    .filter((e) => writes.has(String(e.activityTaskCompletedEventAttributes?.scheduledEventId)))
    .map((e) => unwrap(decode(e.activityTaskCompletedEventAttributes.result?.payloads?.[0])) as EvidenceRef);
}

/** What the workflow returned (completed result, or the result carried in a failure's details); none if cancelled. */
export function resultIn(history: HistoryJson): RunbookResult | undefined {
  const last = history.events?.[history.events.length - 1];
  const payload =
    last?.workflowExecutionCompletedEventAttributes?.result?.payloads?.[0] ??
    last?.workflowExecutionFailedEventAttributes?.failure?.applicationFailureInfo?.details?.payloads?.[0];
  return payload ? (decode(payload) as RunbookResult) : undefined;
}

export function isClosed(history: HistoryJson): boolean {
  const type = history.events?.[history.events.length - 1]?.eventType as string | undefined;
  return Boolean(
    type &&
      /WORKFLOW_EXECUTION_(COMPLETED|FAILED|CANCELED|TERMINATED|TIMED_OUT|CONTINUED_AS_NEW)$/.test(type),
  );
}
