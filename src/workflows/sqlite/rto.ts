import { parseDuration } from '../../shared/duration.js';
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
