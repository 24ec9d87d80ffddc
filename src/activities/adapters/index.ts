import { requireSection, type LoadedTarget } from '../environment.js';
import { parseDuration } from '../../shared/duration.js';
import type { FlagStoreConfig, ServiceConfig } from '../../shared/schemas.js';
import { ComposeService } from './compose.js';
import { EnvFileFlagStore } from './env-file.js';
import { runCommand } from './exec.js';
import { FileLogSource } from './file-logs.js';
import { KubernetesFlagStore, KubernetesLogSource, KubernetesService } from './kubernetes.js';
import { ProcessService, serviceEnvironment } from './process.js';
import { SystemdService } from './systemd.js';
import { ConfigMapConfigStore } from '../migration/config/kubernetes.js';
import type { CommandRunner, FlagStore, LogSource, ServiceAdapter } from './types.js';

/** Picks the adapter named by the target's configuration. */
export function flagStoreFor(t: LoadedTarget, runner: CommandRunner = runCommand): FlagStore {
  return flagStoreFromConfig(requireSection(t, 'flags').store, t.resolvePath, runner);
}

export function serviceFor(t: LoadedTarget, runner: CommandRunner = runCommand): ServiceAdapter {
  return serviceFromConfig(requireSection(t, 'service'), t.resolvePath, runner);
}

/** A service adapter from its configuration (a target's `service`, or one of `sqlite.services`). */
export function serviceFromConfig(
  service: ServiceConfig,
  resolvePath: (p: string) => string,
  runner: CommandRunner = runCommand,
): ServiceAdapter {
  switch (service.type) {
    case 'process':
      return new ProcessService({
        pidFile: resolvePath(service.pidFile),
        command: service.command,
        cwd: service.cwd ? resolvePath(service.cwd) : undefined,
        logFile: service.logFile ? resolvePath(service.logFile) : undefined,
        reload: service.reload,
        stopTimeoutMs: parseDuration(service.stopTimeout),
        env: serviceEnvironment(service.passEnv, service.env),
      });
    case 'kubernetes':
      return new KubernetesService(service, runner);
    case 'systemd':
      return new SystemdService(service, runner);
    case 'compose':
      return new ComposeService({ ...service, file: resolvePath(service.file) }, runner);
  }
}

/** A flag store from its configuration (a target's `flags.store`, or `sqlite.flags`). */
export function flagStoreFromConfig(
  store: FlagStoreConfig,
  resolvePath: (p: string) => string,
  runner: CommandRunner = runCommand,
): FlagStore {
  switch (store.type) {
    case 'env-file':
      return new EnvFileFlagStore(resolvePath(store.path));
    case 'kubernetes':
      return new KubernetesFlagStore(store, runner);
    case 'kubernetes-configmap':
      // the migration config store of the same name: a ConfigMap's data keys, merge-patched
      return new ConfigMapConfigStore(store, runner);
  }
}

export function logSourceFor(t: LoadedTarget, runner: CommandRunner = runCommand): LogSource | undefined {
  const logs = requireSection(t, 'health').logs;
  if (!logs) return undefined;
  switch (logs.type) {
    case 'file':
      return new FileLogSource(t.resolvePath(logs.path));
    case 'kubernetes':
      return new KubernetesLogSource(logs, runner);
  }
}
