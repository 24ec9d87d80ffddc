import type { Logger } from 'pino';
import { loadTarget, requireSection, withEnvironmentErrors, type LoadedTarget } from '../../environment.js';
import type { StoreFactory } from '../../stores/index.js';
import type { MigrationTargetConfig } from '../../../shared/schemas.js';
import type { JobSource } from '../types.js';
import { openJobSource } from './index.js';

export interface JobActivityDeps {
  environmentsDir: string;
  stores: Pick<StoreFactory, 'pool'>;
  log: Logger;
}

/** A target's migration section, and its job source opened. */
export interface JobTarget {
  t: LoadedTarget;
  m: MigrationTargetConfig;
  source: JobSource;
  /** migration.workDir, resolved */
  workDir: string;
}

export interface TargetRef {
  environment: string;
  target: string;
}

export function jobTarget(deps: JobActivityDeps, ref: TargetRef): Promise<JobTarget> {
  return withEnvironmentErrors(async () => {
    const t = await loadTarget(deps.environmentsDir, ref.environment, ref.target);
    const m = requireSection(t, 'migration');
    return { t, m, source: openJobSource(m.jobs, t.resolvePath, deps.stores), workDir: t.resolvePath(m.workDir) };
  });
}
