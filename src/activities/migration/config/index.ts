import type { ConfigStoreConfig } from '../../../shared/schemas.js';
import { runCommand } from '../../adapters/exec.js';
import type { CommandRunner } from '../../adapters/types.js';
import type { ConfigStore } from '../types.js';
import { ComposeConfigStore } from './compose.js';
import { EnvFileConfigStore } from './env-file.js';
import { IniConfigStore } from './ini.js';
import { ConfigMapConfigStore, KubernetesEnvConfigStore } from './kubernetes.js';

/** The configuration store a target's `migration.config` names. */
export function configStoreFromConfig(
  config: ConfigStoreConfig,
  resolvePath: (p: string) => string,
  runner: CommandRunner = runCommand,
): ConfigStore {
  switch (config.type) {
    case 'ini':
      return new IniConfigStore(resolvePath(config.path));
    case 'env-file':
      return new EnvFileConfigStore(resolvePath(config.path));
    case 'kubernetes-configmap':
      return new ConfigMapConfigStore(config, runner);
    case 'kubernetes-env':
      return new KubernetesEnvConfigStore(config, runner);
    case 'compose':
      return new ComposeConfigStore({ ...config, file: resolvePath(config.file) });
  }
}
