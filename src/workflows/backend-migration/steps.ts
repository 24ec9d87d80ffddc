import type { MigrationValues } from '../../shared/migration.js';

export const BACKEND_PHASE_SWITCH_STEPS = [
  'load environment',
  'read configuration',
  'seal plan',
  'approval',
  'stop services',
  'restore last known good',
  'write configuration',
  'apply',
  'wait healthy',
  'validate',
  'soak',
  'snapshot last known good',
  'notify',
] as const;
export type PhaseSwitchStep = (typeof BACKEND_PHASE_SWITCH_STEPS)[number];

/** What a run reports (the result's `extra`, the evidence). */
export interface PhaseSwitchRun {
  from?: string;
  to?: string;
  checkpoint?: string;
  steps: Array<{ phase: string; forward: boolean; result: string }>;
  rolledBackTo?: string;
  lastKnownGood?: { file: string; digest: string };
  notification?: string;
}

/** `key=value …` for summaries and notifications */
export const showValues = (v: MigrationValues): string =>
  Object.entries(v)
    .map(([k, x]) => `${k}=${x ?? '(unset)'}`)
    .join(' ') || 'no keys';
