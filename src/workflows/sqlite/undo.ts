import type { SqliteActivities } from '../../activities/sqlite/index.js';
import { runbookActivities } from '../engine/activity-options.js';

const undo = runbookActivities<SqliteActivities>('undo');
const longUndo = runbookActivities<SqliteActivities>('longUndo');

/**
 * Puts a verified backup (by file name) in place of the database with the services stopped: choose (signature
 * and digest checked) → stage beside the database (validated) → one rename. Safe to repeat. The caller starts
 * the services again (its "stop services" undo).
 */
export async function restoreBackupInPlace(
  ref: { environment: string; target: string },
  services: string[],
  file: string,
  tag: string,
): Promise<void> {
  await undo.stopSqliteServices({ ...ref, services });
  const { chosen } = await undo.chooseBackup({ ...ref, backup: file });
  const staged = await longUndo.stageRestore({ ...ref, backup: chosen, tag });
  await undo.installRestore({ ...ref, tag, rawSha256: staged.rawSha256 });
}
