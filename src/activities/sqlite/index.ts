import { createSqliteBackupActivities } from './backup.js';
import { createSqliteChooseActivities } from './choose.js';
import type { SqliteDeps } from './deps.js';
import { createSqliteRestoreActivities } from './restore.js';
import { createSqliteDescribeActivities } from './describe.js';
import { createSqliteOperateActivities } from './operate.js';
import { createSqliteRecoveryActivities } from './recovery.js';

/** Every activity of the SQLite runbooks (seed: sqlite-rollback-and-disaster-recovery.md). */
export const createSqliteActivities = (deps: SqliteDeps) => ({
  ...createSqliteDescribeActivities(deps),
  ...createSqliteBackupActivities(deps),
  ...createSqliteOperateActivities(deps),
  ...createSqliteChooseActivities(deps),
  ...createSqliteRestoreActivities(deps),
  ...createSqliteRecoveryActivities(deps),
});
export type SqliteActivities = ReturnType<typeof createSqliteActivities>;
