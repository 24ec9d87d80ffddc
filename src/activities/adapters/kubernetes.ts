import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../shared/constants.js';
import { parseDuration } from '../../shared/duration.js';
import type { FlagStoreConfig, LogSourceConfig, ServiceConfig } from '../../shared/schemas.js';
import { kubeEnv, runCommand } from './exec.js';
import type {
  CommandRunner,
  FlagStore,
  FlagValues,
  LogMatches,
  LogSource,
  ServiceAdapter,
  ServiceState,
} from './types.js';

export type KubernetesFlagStoreConfig = Extract<FlagStoreConfig, { type: 'kubernetes' }>;
export type KubernetesServiceConfig = Extract<ServiceConfig, { type: 'kubernetes' }>;
export type KubernetesLogSourceConfig = Extract<LogSourceConfig, { type: 'kubernetes' }>;

const KUBECTL = 'kubectl';
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** what `new Date().toISOString()` produces; anything else is not a cursor of ours */
const ISO_CURSOR = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const MAX_SAMPLE = 5;
/** extra time for kubectl itself on top of the rollout's own --timeout */
const ROLLOUT_GRACE_MS = 30_000;

interface EnvEntry {
  name: string;
  value?: string;
  valueFrom?: unknown;
}

interface ContainerSpec {
  name: string;
  env?: EnvEntry[];
}

interface DeploymentJson {
  spec?: { replicas?: number; template?: { spec?: { containers?: ContainerSpec[] } } };
  status?: { replicas?: number; readyReplicas?: number; availableReplicas?: number; updatedReplicas?: number };
}

/** An env entry as found in the pod template: a literal value, a reference (valueFrom), or absent. */
type EnvState = { kind: 'value'; value: string } | { kind: 'reference' } | { kind: 'absent' };
const ABSENT: EnvState = { kind: 'absent' };

function deploymentRef(deployment: string): string {
  return `deployment/${deployment}`;
}

function parseDeployment(stdout: string, where: string): DeploymentJson {
  try {
    return JSON.parse(stdout) as DeploymentJson;
  } catch {
    throw new Error(`kubectl returned output that is not JSON for ${where}: ${stdout.slice(0, 200)}`);
  }
}

/**
 * Flags stored as environment variables of one container of a Deployment's pod template.
 *
 * An entry set through `valueFrom` (a Secret or ConfigMap reference) has no literal value: `read` reports it
 * as null, but `write` never treats it as equal to the wanted value, so writing replaces (or, for null,
 * removes) the reference rather than silently keeping it.
 */
export class KubernetesFlagStore implements FlagStore {
  constructor(
    private readonly config: KubernetesFlagStoreConfig,
    private readonly runner: CommandRunner = runCommand,
  ) {}

  async read(names: string[]): Promise<FlagValues> {
    const states = await this.readStates(names);
    const values: FlagValues = {};
    for (const name of names) {
      const state = states.get(name) ?? ABSENT;
      values[name] = state.kind === 'value' ? state.value : null;
    }
    return values;
  }

  async write(values: FlagValues): Promise<{ changed: boolean }> {
    const names = Object.keys(values);
    for (const name of names) {
      if (!ENV_NAME.test(name)) {
        throw ApplicationFailure.nonRetryable(`"${name}" is not an environment variable name`, ErrorType.InvalidInput);
      }
    }
    const current = await this.readStates(names);
    const assignments: string[] = [];
    const removals: string[] = [];
    for (const name of names) {
      const wanted = values[name] ?? null;
      const state = current.get(name) ?? ABSENT;
      if (wanted === null) {
        if (state.kind !== 'absent') removals.push(`${name}-`);
      } else if (state.kind !== 'value' || state.value !== wanted) {
        assignments.push(`${name}=${wanted}`);
      }
    }
    if (assignments.length === 0 && removals.length === 0) return { changed: false };
    await this.runner(
      KUBECTL,
      [
        'set',
        'env',
        deploymentRef(this.config.deployment),
        '-n',
        this.config.namespace,
        ...this.containerArgs(),
        ...assignments,
        ...removals,
      ],
      { env: kubeEnv(this.config.kubeconfigEnv) },
    );
    return { changed: true };
  }

  describe(): string {
    const container = this.config.container ? ` container ${this.config.container}` : '';
    return `kubernetes env of deployment/${this.config.deployment} in namespace ${this.config.namespace}${container}`;
  }

  private containerArgs(): string[] {
    return this.config.container ? ['-c', this.config.container] : [];
  }

  private async readStates(names: string[]): Promise<Map<string, EnvState>> {
    const { stdout } = await this.runner(
      KUBECTL,
      ['get', deploymentRef(this.config.deployment), '-n', this.config.namespace, '-o', 'json'],
      { env: kubeEnv(this.config.kubeconfigEnv) },
    );
    const deployment = parseDeployment(stdout, this.describe());
    const containers = deployment.spec?.template?.spec?.containers ?? [];
    const container = this.config.container ? containers.find((c) => c.name === this.config.container) : containers[0];
    if (!container) {
      const wanted = this.config.container ? `container "${this.config.container}"` : 'any container';
      throw ApplicationFailure.nonRetryable(
        `deployment/${this.config.deployment} in namespace ${this.config.namespace} has no ${wanted} ` +
          `(containers: ${containers.map((c) => c.name).join(', ') || 'none'})`,
        ErrorType.EnvironmentInvalid,
      );
    }
    const states = new Map<string, EnvState>();
    for (const name of names) {
      // The last entry wins when a name is listed twice, as in the running container.
      const entry = (container.env ?? []).filter((e) => e.name === name).at(-1);
      if (!entry) states.set(name, ABSENT);
      else if (entry.valueFrom !== undefined) states.set(name, { kind: 'reference' });
      else states.set(name, { kind: 'value', value: entry.value ?? '' });
    }
    return states;
  }
}

export interface KubernetesServiceOptions {
  /** replica count `start` scales to (default 1) */
  replicas?: number;
}

/** A Deployment: reload and restart are a rollout restart that waits for the rollout to finish. */
export class KubernetesService implements ServiceAdapter {
  private readonly rolloutTimeoutMs: number;
  private readonly startReplicas: number;

  constructor(
    private readonly config: KubernetesServiceConfig,
    private readonly runner: CommandRunner = runCommand,
    options: KubernetesServiceOptions = {},
  ) {
    this.rolloutTimeoutMs = parseDuration(config.rolloutTimeout);
    this.startReplicas = options.replicas ?? 1;
    if (!Number.isInteger(this.startReplicas) || this.startReplicas < 1) {
      throw ApplicationFailure.nonRetryable(
        `replicas must be a positive integer, got ${this.startReplicas}`,
        ErrorType.EnvironmentInvalid,
      );
    }
  }

  async start(): Promise<void> {
    await this.kubectl(['scale', this.ref(), '-n', this.config.namespace, `--replicas=${this.startReplicas}`]);
  }

  async stop(): Promise<void> {
    await this.scale(0);
  }

  /** the replica count the Deployment is set to (spec.replicas), so a stop can be undone to exactly that */
  async replicas(): Promise<number> {
    const { stdout } = await this.kubectl(['get', this.ref(), '-n', this.config.namespace, '-o', 'json']);
    return parseDeployment(stdout, this.describe()).spec?.replicas ?? 0;
  }

  async scale(replicas: number): Promise<void> {
    if (!Number.isInteger(replicas) || replicas < 0)
      throw ApplicationFailure.nonRetryable(
        `replicas must be a non-negative integer, got ${replicas}`,
        ErrorType.InvalidInput,
      );
    await this.kubectl(['scale', this.ref(), '-n', this.config.namespace, `--replicas=${replicas}`]);
  }

  reload(): Promise<void> {
    return this.restart();
  }

  async restart(): Promise<void> {
    await this.kubectl(['rollout', 'restart', this.ref(), '-n', this.config.namespace]);
    const seconds = Math.max(1, Math.ceil(this.rolloutTimeoutMs / 1000));
    await this.kubectl(
      ['rollout', 'status', this.ref(), '-n', this.config.namespace, `--timeout=${seconds}s`],
      seconds * 1000 + ROLLOUT_GRACE_MS,
    );
  }

  async status(): Promise<ServiceState> {
    const { stdout } = await this.kubectl(['get', this.ref(), '-n', this.config.namespace, '-o', 'json']);
    const deployment = parseDeployment(stdout, this.describe());
    const available = deployment.status?.availableReplicas ?? 0;
    const desired = deployment.spec?.replicas ?? 0;
    const ready = deployment.status?.readyReplicas ?? 0;
    return {
      running: available >= 1,
      detail: `${available}/${desired} replicas available, ${ready} ready`,
    };
  }

  describe(): string {
    return `kubernetes deployment/${this.config.deployment} in namespace ${this.config.namespace}`;
  }

  private ref(): string {
    return deploymentRef(this.config.deployment);
  }

  private kubectl(args: string[], timeoutMs?: number) {
    const env = kubeEnv(this.config.kubeconfigEnv);
    return this.runner(KUBECTL, args, timeoutMs === undefined ? { env } : { env, timeoutMs });
  }
}

/**
 * Logs of a Deployment through `kubectl logs deployment/<name>`, which reads one pod of the Deployment
 * (all of its containers). The cursor is a timestamp; lines are counted from it on via --since-time.
 */
export class KubernetesLogSource implements LogSource {
  constructor(
    private readonly config: KubernetesLogSourceConfig,
    private readonly runner: CommandRunner = runCommand,
  ) {}

  cursor(): Promise<string> {
    return Promise.resolve(new Date().toISOString());
  }

  async matchesSince(cursor: string, pattern: RegExp): Promise<LogMatches> {
    if (!ISO_CURSOR.test(cursor)) {
      throw ApplicationFailure.nonRetryable(`log cursor "${cursor}" is not an ISO timestamp`, ErrorType.InvalidInput);
    }
    const { stdout } = await this.runner(
      KUBECTL,
      [
        'logs',
        deploymentRef(this.config.deployment),
        '-n',
        this.config.namespace,
        `--since-time=${cursor}`,
        '--all-containers=true',
      ],
      { env: kubeEnv(this.config.kubeconfigEnv) },
    );
    const matcher = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
    const matching = stdout.split('\n').filter((line) => line !== '' && matcher.test(line));
    return { count: matching.length, sample: matching.slice(0, MAX_SAMPLE) };
  }

  describe(): string {
    return `kubernetes logs of deployment/${this.config.deployment} in namespace ${this.config.namespace}`;
  }
}
