import { createSqliteBackupActivities } from './backup.js';
import { createSqliteChooseActivities } from './choose.js';
import type { SqliteDeps } from './deps.js';
import { createSqliteRestoreActivities } from './restore.js';
import { createSqliteDescribeActivities } from './describe.js';
import { createSqliteMilestoneActivities } from './milestone.js';
import { createSqliteOperateActivities } from './operate.js';
import { createSqliteDrillActivities } from './drill.js';
import { createSqliteRecoverActivities } from './recover.js';
import { createSqliteSpaceActivities } from './space.js';
import { createSqliteRecoveryActivities } from './recovery.js';

/** Every activity of the SQLite runbooks (seed: sqlite-rollback-and-disaster-recovery.md). */
export const createSqliteActivities = (deps: SqliteDeps) => ({
  ...createSqliteDescribeActivities(deps),
  ...createSqliteBackupActivities(deps),
  ...createSqliteOperateActivities(deps),
  ...createSqliteChooseActivities(deps),
  ...createSqliteRestoreActivities(deps),
  ...createSqliteDrillActivities(deps),
  ...createSqliteMilestoneActivities(deps),
  ...createSqliteRecoverActivities(deps),
  ...createSqliteSpaceActivities(deps),
  ...createSqliteRecoveryActivities(deps),
});
export type SqliteActivities = ReturnType<typeof createSqliteActivities>;
