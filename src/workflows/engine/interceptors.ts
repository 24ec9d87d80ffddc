import type {
  ActivityInput,
  Next,
  WorkflowInterceptorsFactory,
  WorkflowOutboundCallsInterceptor,
} from '@temporalio/workflow';
import { ATTEMPT_MARKER } from '../../shared/constants.js';

type AttemptSink = (activityType: string, attempt: number) => void;
let sink: AttemptSink | undefined;

/** The engine listens for the attempt number of each completed activity (module state is per workflow). */
export function onActivityAttempt(fn: AttemptSink): void {
  sink = fn;
}

function unwrap(activityType: string, result: unknown): unknown {
  if (result && typeof result === 'object' && ATTEMPT_MARKER in result) {
    const { [ATTEMPT_MARKER]: attempt, value } = result as { [ATTEMPT_MARKER]: number; value: unknown };
    sink?.(activityType, attempt);
    return value;
  }
  return result;
}

class AttemptOutbound implements WorkflowOutboundCallsInterceptor {
  async scheduleActivity(
    input: ActivityInput,
    next: Next<WorkflowOutboundCallsInterceptor, 'scheduleActivity'>,
  ): Promise<unknown> {
    return unwrap(input.activityType, await next(input));
  }
  async scheduleLocalActivity(
    input: Parameters<NonNullable<WorkflowOutboundCallsInterceptor['scheduleLocalActivity']>>[0],
    next: Next<WorkflowOutboundCallsInterceptor, 'scheduleLocalActivity'>,
  ): Promise<unknown> {
    return unwrap(input.activityType, await next(input));
  }
}

export const interceptors: WorkflowInterceptorsFactory = () => ({ outbound: [new AttemptOutbound()] });
