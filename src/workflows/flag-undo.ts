import type { FlagValues } from '../activities/adapters/types.js';
import type { createFlagActivities } from '../activities/flags.js';
import { runbookActivities } from './engine/activity-options.js';

/** The undo of every step that changes flags (the feature-flag rollback's "set flags", the dual-write halt). */
const undo = runbookActivities<ReturnType<typeof createFlagActivities>>('undo');

/**
 * Puts flags back to `previous` where they still hold what the run set (`ours`), and reloads the service when
 * that changed anything. Safe when nothing was written: the undo of a step that can partially apply.
 */
export async function restoreFlags(
  ref: { environment: string; target: string },
  previous: FlagValues,
  ours: FlagValues,
  action: 'reload' | 'restart',
): Promise<void> {
  const { changed } = await undo.writeFlags({ ...ref, values: previous, onlyIfCurrent: ours });
  if (changed) await undo.reloadService({ ...ref, action });
}
