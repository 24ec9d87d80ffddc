import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../shared/constants.js';
import type { CommandRunner, ServiceAdapter } from '../adapters/types.js';
import { serviceFromConfig } from '../adapters/index.js';
import {
  loadTarget,
  requireSection,
  withEnvironmentErrors,
  EnvironmentError,
  type LoadedTarget,
} from '../environment.js';
import type { MigrationTargetConfig } from '../../shared/schemas.js';
import { configStoreFromConfig } from './config/index.js';
import type { ConfigStore } from './types.js';

export interface TargetRef {
  environment: string;
  target: string;
}

export interface MigrationTarget {
  t: LoadedTarget;
  m: MigrationTargetConfig;
  store: ConfigStore;
  /** the named services (all of them when `names` is absent or empty), in the environment's order */
  services(names?: string[]): Array<{ name: string; adapter: ServiceAdapter }>;
}

/** Loads `targets.<t>.migration` (EnvironmentInvalid naming the field when it is missing or inconsistent). */
export function loadMigrationTarget(
  environmentsDir: string,
  ref: TargetRef,
  runner: CommandRunner | undefined,
): Promise<MigrationTarget> {
  return withEnvironmentErrors(async () => {
    const t = await loadTarget(environmentsDir, ref.environment, ref.target);
    const m = requireSection(t, 'migration');
    const where = `${t.file}: targets.${ref.target}.migration`;
    if (m.backends.old === m.backends.new)
      throw new EnvironmentError(`${where}.backends: old and new are both "${m.backends.old}"`);
    for (const [phase, checkpoint] of Object.entries(m.rollbackCheckpoints)) {
      if (!m.checkpoints[checkpoint!])
        throw new EnvironmentError(`${where}.rollbackCheckpoints.${phase}: no checkpoint "${checkpoint}"`);
    }
    for (const [name, checkpoint] of Object.entries(m.checkpoints)) {
      const unknown = checkpoint.restart.filter((s) => !m.services[s]);
      if (unknown.length)
        throw new EnvironmentError(`${where}.checkpoints.${name}.restart: unknown services ${unknown.join(', ')}`);
    }
    return {
      t,
      m,
      store: configStoreFromConfig(m.config, t.resolvePath, runner),
      services(names?: string[]) {
        const wanted = names?.length ? names : Object.keys(m.services);
        return wanted.map((name) => {
          const config = m.services[name];
          if (!config)
            throw ApplicationFailure.nonRetryable(
              `${where}.services: no service "${name}"`,
              ErrorType.EnvironmentInvalid,
            );
          return { name, adapter: serviceFromConfig(config, t.resolvePath, runner) };
        });
      },
    };
  });
}
