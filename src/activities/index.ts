import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { CommandRunner } from './adapters/types.js';
import { createEngineActivities } from './engine.js';
import { createCleanupActivities } from './cleanup/index.js';
import { createFlagActivities } from './flags.js';
import { createDualWriteActivities } from './dual-write/index.js';
import type { KeyPair } from './keys.js';
import { createEmergencyActivities } from './migration/emergency.js';
import { createMigrationActivities } from './migration/index.js';
import { createPostgresActivities } from './postgres/index.js';
import { createOutputActivities } from './migration/outputs.js';
import { createRunActivities } from './runs.js';
import { createSqliteActivities } from './sqlite/index.js';
import { createJobActivities } from './migration/jobs/activities.js';
import type { StoreFactory } from './stores/index.js';
import { createTriageActivities } from './triage.js';

export interface ActivityDeps {
  environmentsDir: string;
  evidenceDir: string;
  log: Logger;
  runner?: CommandRunner;
  stores: StoreFactory;
  /** the worker's evidence key */
  signingKey: KeyPair;
  /** Temporal, for target locks and run checks */
  client: Client;
}

/** Every activity the runbooks call, built once per worker from its dependencies. */
export const createActivities = (deps: ActivityDeps) => ({
  ...createEngineActivities(deps),
  ...createRunActivities(deps),
  ...createFlagActivities(deps),
  ...createDualWriteActivities(deps),
  ...createSqliteActivities(deps),
  ...createMigrationActivities(deps),
  ...createPostgresActivities(deps),
  ...createOutputActivities(deps),
  ...createCleanupActivities(deps),
  ...createEmergencyActivities(deps),
  ...createJobActivities(deps),
  ...createTriageActivities(deps),
});
