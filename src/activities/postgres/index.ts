import { createPostgresBackupActivities, type PostgresDeps } from './backup.js';
import { createPostgresRestoreActivities } from './restore.js';

/** Every activity of the Postgres backup and restore runbooks (seed: feature-flag-dual-write-rollback.md §4). */
export const createPostgresActivities = (deps: PostgresDeps) => ({
  ...createPostgresBackupActivities(deps),
  ...createPostgresRestoreActivities(deps),
});
export type PostgresActivities = ReturnType<typeof createPostgresActivities>;
