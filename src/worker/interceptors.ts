import type { Context } from '@temporalio/activity';
import type {
  ActivityExecuteInput,
  ActivityInboundCallsInterceptor,
  ActivityInterceptors,
  Next,
} from '@temporalio/worker';
import { ATTEMPT_MARKER } from '../shared/constants.js';

/** Tags each activity result with its attempt number (see ATTEMPT_MARKER); the workflow side unwraps it. */
export const attemptInterceptor = (ctx: Context): ActivityInterceptors => ({
  inbound: {
    async execute(
      input: ActivityExecuteInput,
      next: Next<ActivityInboundCallsInterceptor, 'execute'>,
    ): Promise<unknown> {
      const value = await next(input);
      return { [ATTEMPT_MARKER]: ctx.info.attempt, value };
    },
  },
});
