import { Context } from '@temporalio/activity';

/**
 * Runs `work` while heartbeating `details()` every second, so a long copy or check that cannot report progress
 * itself still shows a live worker (and a dead one is noticed by the heartbeat timeout). Outside an activity
 * (tests, benchmarks) it just runs `work`.
 */
export async function heartbeating<T>(work: Promise<T>, details: () => unknown = () => undefined): Promise<T> {
  let ctx: Context | undefined;
  try {
    ctx = Context.current();
  } catch {
    return work;
  }
  const timer = setInterval(() => ctx!.heartbeat(details()), 1000);
  try {
    ctx.heartbeat(details());
    return await work;
  } finally {
    clearInterval(timer);
  }
}

/** The heartbeat details of an earlier attempt of this activity (undefined on the first, or outside one). */
export function previousHeartbeat<T>(): T | undefined {
  try {
    return Context.current().info.heartbeatDetails as T | undefined;
  } catch {
    return undefined;
  }
}
