import { createSqliteBackupActivities } from './backup.js';
import type { SqliteDeps } from './deps.js';
import { createSqliteDescribeActivities } from './describe.js';

/** Every activity of the SQLite runbooks (seed: sqlite-rollback-and-disaster-recovery.md). */
export const createSqliteActivities = (deps: SqliteDeps) => ({
  ...createSqliteDescribeActivities(deps),
  ...createSqliteBackupActivities(deps),
});
export type SqliteActivities = ReturnType<typeof createSqliteActivities>;
