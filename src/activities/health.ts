import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { setTimeout as delay } from 'node:timers/promises';
import { ErrorType } from '../shared/constants.js';
import { parseDuration } from '../shared/duration.js';

export interface HttpExpectation {
  url: string;
  expectStatus: number;
  expectBody?: string;
  /** per request */
  timeout?: string;
  /** keep polling this long for the expected answer (0: one request) */
  within?: string;
}

const heartbeat = () => {
  try {
    Context.current().heartbeat();
  } catch {
    // outside an activity
  }
};

/**
 * Polls `url` until it answers with the expected status (and body text), within `within`; a final miss is a
 * non-retryable VerificationFailed naming what was seen. Heartbeats while it polls.
 */
export async function pollHttp(e: HttpExpectation): Promise<{ status: number; url: string; ms: number }> {
  const started = Date.now();
  const deadline = started + parseDuration(e.within ?? '0s');
  const timeout = parseDuration(e.timeout ?? '5s');
  let problem = '';
  do {
    heartbeat();
    try {
      const response = await fetch(e.url, { signal: AbortSignal.timeout(timeout) });
      const body = await response.text();
      if (response.status === e.expectStatus && (!e.expectBody || body.includes(e.expectBody)))
        return { status: response.status, url: e.url, ms: Date.now() - started };
      problem = `HTTP ${response.status}${e.expectBody && !body.includes(e.expectBody) ? `, body lacks ${JSON.stringify(e.expectBody)}` : ''}`;
    } catch (err) {
      problem = (err as Error).message;
    }
    if (Date.now() >= deadline) break;
    await delay(250);
  } while (Date.now() < deadline);
  throw ApplicationFailure.nonRetryable(
    `${e.url} ${e.within && parseDuration(e.within) > 0 ? `unhealthy for ${e.within}` : 'unhealthy'}: ${problem}`,
    ErrorType.VerificationFailed,
  );
}
