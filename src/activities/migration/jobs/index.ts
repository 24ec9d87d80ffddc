import type { JobSourceConfig } from '../../../shared/schemas.js';
import type { StoreFactory } from '../../stores/index.js';
import type { JobSource } from '../types.js';
import { PostgresJobSource } from './postgres.js';
import { SpoolJobSource } from './spool.js';

export { PostgresJobSource } from './postgres.js';
export { SpoolJobSource } from './spool.js';
export { JOB_STATES } from './errors.js';

/** The job source an environment names (paths relative to its file; a table's connection from the worker's env). */
export function openJobSource(
  config: JobSourceConfig,
  resolvePath: (p: string) => string,
  stores: Pick<StoreFactory, 'pool'>,
): JobSource {
  switch (config.type) {
    case 'spool':
      return new SpoolJobSource(resolvePath(config.root));
    case 'postgres':
      return new PostgresJobSource(stores.pool(config.urlEnv), config.table);
  }
}
