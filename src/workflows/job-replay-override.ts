import type { Runbook } from './engine/runbook.js';

/** The backend override of a job-replay run (written through the migration config store activities). */
export interface Override {
  restore(): Promise<void>;
}

export interface BackendOverride {
  /** the primary backend's current value */
  read(): Promise<string | undefined>;
  /** sets it (undo registered before), restarts, waits healthy */
  apply(current: string | undefined): Promise<Override>;
}

export function backendOverride(
  _rb: Runbook<string>,
  _ref: { environment: string; target: string },
  _key: string,
  _backend: string,
): BackendOverride {
  throw new Error('backend override: waiting for the migration config store activities (h-stores)');
}
