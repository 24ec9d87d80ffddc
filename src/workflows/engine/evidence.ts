import type { EvidenceRef, RunbookStatus } from '../../shared/types.js';
import { engineActivities } from './activities.js';
import { errorMessage } from './stop.js';

/**
 * Writes the run's evidence (the worker chains every fact and signs the chain head) and returns its reference for
 * the workflow result. A failure to write is recorded in the run's error, never hidden, and does not change the
 * outcome: the history still holds every fact.
 */
export async function recordEvidence(
  state: RunbookStatus,
  extra: Record<string, unknown> | undefined,
): Promise<EvidenceRef | undefined> {
  try {
    return await engineActivities.writeEvidence({ status: state, extra });
  } catch (err) {
    state.error = `${state.error ? `${state.error}; ` : ''}evidence not written: ${errorMessage(err)}`;
    return undefined;
  }
}
