import { ApplicationFailure } from '@temporalio/common';
import { canonicalJson } from '../../../shared/canonical-json.js';
import { ErrorType } from '../../../shared/constants.js';
import type { ConfigStoreConfig } from '../../../shared/schemas.js';
import { kubeEnv, runCommand } from '../../adapters/exec.js';
import { KubernetesFlagStore } from '../../adapters/kubernetes.js';
import type { CommandRunner } from '../../adapters/types.js';
import type { ConfigStore, ConfigValues } from '../types.js';

type ConfigMapStoreConfig = Extract<ConfigStoreConfig, { type: 'kubernetes-configmap' }>;
type EnvStoreConfig = Extract<ConfigStoreConfig, { type: 'kubernetes-env' }>;

const KUBECTL = 'kubectl';

function parseJson<T>(stdout: string, where: string): T {
  try {
    return JSON.parse(stdout) as T;
  } catch {
    throw new Error(`kubectl returned output that is not JSON for ${where}: ${stdout.slice(0, 200)}`);
  }
}

/** Values differing between `current` and `wanted` as a JSON merge patch (null removes a key). */
function mergePatch(current: Record<string, string>, wanted: ConfigValues): Record<string, string | null> {
  return Object.fromEntries(Object.entries(wanted).filter(([k, v]) => (current[k] ?? null) !== v));
}

/** A ConfigMap's data keys: `kubectl get configmap -o json`, `kubectl patch configmap --type merge`. */
export class ConfigMapConfigStore implements ConfigStore {
  constructor(
    private readonly config: ConfigMapStoreConfig,
    private readonly runner: CommandRunner = runCommand,
  ) {}

  describe(): string {
    return `kubernetes configmap/${this.config.configMap} in namespace ${this.config.namespace}`;
  }

  async read(keys: string[]): Promise<ConfigValues> {
    const data = await this.data();
    return Object.fromEntries(keys.map((k) => [k, data[k] ?? null]));
  }

  async write(values: ConfigValues): Promise<{ changed: boolean }> {
    return this.patch(mergePatch(await this.data(), values));
  }

  /** the data as canonical JSON (keys sorted): equal data, equal bytes */
  async snapshot(): Promise<Buffer> {
    return Buffer.from(canonicalJson(await this.data()));
  }

  async restoreSnapshot(content: Buffer): Promise<{ changed: boolean }> {
    const wanted = parseJson<Record<string, string>>(content.toString('utf8'), `the snapshot of ${this.describe()}`);
    const current = await this.data();
    const removals = Object.fromEntries(
      Object.keys(current)
        .filter((k) => !(k in wanted))
        .map((k) => [k, null]),
    );
    return this.patch({ ...mergePatch(current, wanted), ...removals });
  }

  private async patch(changes: Record<string, string | null>): Promise<{ changed: boolean }> {
    if (Object.keys(changes).length === 0) return { changed: false };
    await this.kubectl(['patch', ...this.ref(), '--type', 'merge', '-p', JSON.stringify({ data: changes })]);
    return { changed: true };
  }

  private async data(): Promise<Record<string, string>> {
    const { stdout } = await this.kubectl(['get', ...this.ref(), '-o', 'json']);
    return parseJson<{ data?: Record<string, string> }>(stdout, this.describe()).data ?? {};
  }

  private ref(): string[] {
    return ['configmap', this.config.configMap, '-n', this.config.namespace];
  }

  private kubectl(args: string[]) {
    return this.runner(KUBECTL, args, { env: kubeEnv(this.config.kubeconfigEnv) });
  }
}

interface EnvEntry {
  name: string;
  value?: string;
  valueFrom?: unknown;
}

interface DeploymentJson {
  spec?: { template?: { spec?: { containers?: Array<{ name: string; env?: EnvEntry[] }> } } };
}

/**
 * A Deployment container's environment: read and written through the Kubernetes flag store (`kubectl set env`,
 * which edits a variable in place, appends a new one and deletes a removed one); the snapshot is the container's
 * whole env list, put back exactly (order, valueFrom references) with one JSON patch guarded by the container's name.
 */
export class KubernetesEnvConfigStore implements ConfigStore {
  private readonly flags: KubernetesFlagStore;

  constructor(
    private readonly config: EnvStoreConfig,
    private readonly runner: CommandRunner = runCommand,
  ) {
    const { type: _type, ...rest } = config;
    this.flags = new KubernetesFlagStore({ type: 'kubernetes', ...rest }, runner);
  }

  describe(): string {
    return this.flags.describe();
  }

  read(keys: string[]): Promise<ConfigValues> {
    return this.flags.read(keys);
  }

  write(values: ConfigValues): Promise<{ changed: boolean }> {
    return this.flags.write(values);
  }

  async snapshot(): Promise<Buffer> {
    const { container } = await this.container();
    return Buffer.from(canonicalJson({ container: container.name, env: container.env ?? [] }));
  }

  async restoreSnapshot(content: Buffer): Promise<{ changed: boolean }> {
    const wanted = parseJson<{ container: string; env: EnvEntry[] }>(
      content.toString('utf8'),
      `the snapshot of ${this.describe()}`,
    );
    const { container, index } = await this.container();
    if (container.name !== wanted.container)
      throw ApplicationFailure.nonRetryable(
        `the snapshot is of container "${wanted.container}", ${this.describe()} is "${container.name}"`,
        ErrorType.EvidenceMismatch,
      );
    if (canonicalJson(container.env ?? []) === canonicalJson(wanted.env)) return { changed: false };
    const base = `/spec/template/spec/containers/${index}`;
    const patch = [
      { op: 'test', path: `${base}/name`, value: container.name },
      { op: 'add', path: `${base}/env`, value: wanted.env },
    ];
    await this.runner(
      KUBECTL,
      [
        'patch',
        `deployment/${this.config.deployment}`,
        '-n',
        this.config.namespace,
        '--type',
        'json',
        '-p',
        JSON.stringify(patch),
      ],
      { env: kubeEnv(this.config.kubeconfigEnv) },
    );
    return { changed: true };
  }

  private async container() {
    const { stdout } = await this.runner(
      KUBECTL,
      ['get', `deployment/${this.config.deployment}`, '-n', this.config.namespace, '-o', 'json'],
      { env: kubeEnv(this.config.kubeconfigEnv) },
    );
    const containers = parseJson<DeploymentJson>(stdout, this.describe()).spec?.template?.spec?.containers ?? [];
    const index = this.config.container ? containers.findIndex((c) => c.name === this.config.container) : 0;
    const container = containers[index];
    if (!container)
      throw ApplicationFailure.nonRetryable(
        `${this.describe()}: no ${this.config.container ? `container "${this.config.container}"` : 'container'}`,
        ErrorType.EnvironmentInvalid,
      );
    return { container, index };
  }
}
