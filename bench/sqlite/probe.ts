/**
 * The event-loop pause probe: a timer every PROBE_INTERVAL_MS on the bench process's main thread (the activity
 * worker's stand-in). A pause is the gap between two ticks less the interval. At each tick the probe also reads the
 * main thread's scheduler counters (/proc/thread-self/schedstat: time on a CPU, time runnable but waiting for one),
 * so that each pause can be split into what the process did (ran, or blocked in a call) and what the machine did
 * (the thread was ready and waited for a CPU that other work held): on a shared 2-core machine the latter is not
 * the code's.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { PROBE_INTERVAL_MS } from './settings.js';

export interface Pause {
  /** performance.now() when the pause began */
  at: number;
  ms: number;
  /** of `ms`, how long the main thread was runnable and waiting for a CPU (0 where schedstat is missing) */
  waitMs: number;
}

export const NO_PAUSE: Pause = { at: 0, ms: 0, waitMs: 0 };

/** what the main thread itself held the loop for: the pause less its wait for a CPU */
export const ownMs = (p: Pause): number => p.ms - p.waitMs;

/** The pauses of a run or a phase: the longest, and the largest own part of any of them (the goal's measure). */
export interface Pauses {
  longest: Pause;
  ownMs: number;
}

const longestOf = (pauses: Pause[]): Pause => pauses.reduce((a, b) => (b.ms > a.ms ? b : a), NO_PAUSE);

/** The pauses of `pauses` that began within [from, to). */
export function pausesIn(pauses: Pause[], from = -Infinity, to = Infinity): Pauses {
  const within = pauses.filter((p) => p.at >= from && p.at < to);
  return { longest: longestOf(within), ownMs: Math.max(0, ...within.map(ownMs)) };
}

/** Several runs' pauses as one. */
export const mergePauses = (all: Pauses[]): Pauses => ({
  longest: longestOf(all.map((p) => p.longest)),
  ownMs: Math.max(0, ...all.map((p) => p.ownMs)),
});

const SCHEDSTAT = '/proc/thread-self/schedstat';

/** ns the calling thread has waited runnable for a CPU (0 when the kernel does not say) */
function waitedNs(): number {
  try {
    return Number(readFileSync(SCHEDSTAT, 'utf8').split(' ')[1]);
  } catch {
    return 0;
  }
}

export interface Timed<T> {
  value: T;
  ms: number;
  /** the pauses while it ran */
  pause: Pauses;
  /** every pause of 1 ms or more while it ran, in order */
  pauses: Pause[];
}

/** Runs `work` under the probe: wall time, and the pauses of the event loop (a tick before and after it included). */
export async function timed<T>(work: () => Promise<T>): Promise<Timed<T>> {
  const pauses: Pause[] = [];
  let last = performance.now();
  let lastWait = waitedNs();
  const timer = setInterval(() => {
    const now = performance.now();
    const wait = waitedNs();
    const ms = now - last - PROBE_INTERVAL_MS;
    if (ms >= 1) pauses.push({ at: last, ms, waitMs: Math.min(ms, (wait - lastWait) / 1e6) });
    last = now;
    lastWait = wait;
  }, PROBE_INTERVAL_MS);
  try {
    await sleep(3 * PROBE_INTERVAL_MS);
    const started = performance.now();
    const value = await work();
    const ms = performance.now() - started;
    await sleep(3 * PROBE_INTERVAL_MS);
    const during = pauses.filter((p) => p.at + p.ms >= started);
    return { value, ms, pause: pausesIn(during), pauses: during };
  } finally {
    clearInterval(timer);
  }
}
