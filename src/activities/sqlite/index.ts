import { createSqliteBackupActivities } from './backup.js';
import type { SqliteDeps } from './deps.js';
import { createSqliteDescribeActivities } from './describe.js';
import { createSqliteChooseActivities } from './choose.js';
import { createSqliteDrillActivities } from './drill.js';

/** Every activity of the SQLite runbooks (seed: sqlite-rollback-and-disaster-recovery.md). */
export const createSqliteActivities = (deps: SqliteDeps) => ({
  ...createSqliteDescribeActivities(deps),
  ...createSqliteBackupActivities(deps),
  ...createSqliteChooseActivities(deps),
  ...createSqliteDrillActivities(deps),
});
export type SqliteActivities = ReturnType<typeof createSqliteActivities>;
