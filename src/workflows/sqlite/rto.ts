import { formatDuration, parseDuration } from '../../shared/duration.js';
import { invalidInput } from '../../shared/input.js';
import type { StepRecord } from '../../shared/types.js';

/** The seed's recovery phases, in order: each ends when its step (from history) ended. */
export const RTO_PHASES = ['detect', 'decide', 'restore', 'verify', 'healthy'] as const;
export type RtoPhase = (typeof RTO_PHASES)[number];

export interface RtoReport {
  /** when the incident was detected (input detectedAt, else the run's start) */
  detectedAt: string;
  phases: Array<{ phase: RtoPhase; endedAt?: string; ms?: number }>;
  /** detection to healthy; undefined when the run did not get there */
  totalMs?: number;
  targetMs: number;
  target: string;
  withinTarget?: boolean;
}

/**
 * RTO per phase from the run's step records (their times are the history's): `detect` ends when the run started
 * (the operator noticed and started it), `decide` when it was approved, then the ends of the steps named in
 * `ends`. Pure: usable in the workflow, the report and tests.
 */
export function measureRto(
  o: {
    detectedAt?: string;
    startedAt: string;
    steps: StepRecord[];
    ends: Record<Exclude<RtoPhase, 'detect'>, string>;
  },
  target: string,
): RtoReport {
  const detectedAt = o.detectedAt ?? o.startedAt;
  const endOf = (name: string) => o.steps.find((s) => s.name === name && s.status === 'succeeded')?.endedAt;
  const ends: Record<RtoPhase, string | undefined> = {
    detect: o.startedAt,
    decide: endOf(o.ends.decide),
    restore: endOf(o.ends.restore),
    verify: endOf(o.ends.verify),
    healthy: endOf(o.ends.healthy),
  };
  let previous = detectedAt;
  const phases = RTO_PHASES.map((phase) => {
    const endedAt = ends[phase];
    if (!endedAt) return { phase };
    const ms = Math.max(0, Date.parse(endedAt) - Date.parse(previous));
    previous = endedAt;
    return { phase, endedAt, ms };
  });
  const healthy = ends.healthy;
  const totalMs = healthy ? Date.parse(healthy) - Date.parse(detectedAt) : undefined;
  const targetMs = parseDuration(target);
  return {
    detectedAt,
    phases,
    totalMs,
    targetMs,
    target,
    withinTarget: totalMs === undefined ? undefined : totalMs <= targetMs,
  };
}

/** The longest an incident may have been going on when its recovery starts (older: a typo, not an incident). */
const MAX_DETECTED_AGO_MS = 7 * 86_400_000;

/**
 * An input's detectedAt against the run's clock (workflow time): InvalidInput when it is in the future or more
 * than 7 days ago. Returns it normalised to ISO (UTC), or undefined when not given.
 */
export function checkDetectedAt(detectedAt: string | undefined, now: number): string | undefined {
  if (detectedAt === undefined) return undefined;
  const at = Date.parse(detectedAt);
  if (!Number.isFinite(at)) throw invalidInput(`detectedAt: ${detectedAt} is not a time`);
  if (at > now) throw invalidInput(`detectedAt: ${detectedAt} is in the future (now ${new Date(now).toISOString()})`);
  if (now - at > MAX_DETECTED_AGO_MS)
    throw invalidInput(`detectedAt: ${detectedAt} is more than 7 days ago (now ${new Date(now).toISOString()})`);
  return new Date(at).toISOString();
}

/** One line: "RTO 42s of 1h (within target): detect 0s · decide 5s · restore 3s · verify 1s · healthy 2s". */
export function formatRto(r: RtoReport): string {
  const total =
    r.totalMs === undefined
      ? `not reached (target ${r.target})`
      : `${formatDuration(r.totalMs)} of ${r.target} (${r.withinTarget ? 'within target' : 'OVER TARGET'})`;
  const phases = r.phases.map((p) => `${p.phase} ${p.ms === undefined ? '—' : formatDuration(p.ms)}`).join(' · ');
  return `RTO ${total}: ${phases}`;
}

/** true for a value shaped like an RtoReport (a status or evidence `rto` of any runbook) */
export const isRtoReport = (v: unknown): v is RtoReport =>
  typeof v === 'object' && v !== null && Array.isArray((v as RtoReport).phases) && 'targetMs' in v;
