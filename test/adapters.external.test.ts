import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, describe, expect, it } from 'vitest';
import { ComposeService, parseComposePs } from '../src/activities/adapters/compose.js';
import { runCommand } from '../src/activities/adapters/exec.js';
import { KubernetesFlagStore, KubernetesLogSource, KubernetesService } from '../src/activities/adapters/kubernetes.js';
import { SystemdService } from '../src/activities/adapters/systemd.js';
import type { CommandRunner } from '../src/activities/adapters/types.js';
import { makeRecordingFake, readCalls, type FakeResponse } from './fakes/make-fake.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'runbook-adapters-'));
  dirs.push(dir);
  return dir;
}

interface Observed {
  file: string;
  args: string[];
  env: NodeJS.ProcessEnv | undefined;
  timeoutMs: number | undefined;
}

/**
 * The real runCommand with PATH set to the given directories, recording the options each adapter passes.
 * Fakes need node's own directory on PATH too, for their shebang.
 */
function runnerWithPath(pathDirs: string[], observed: Observed[] = []): CommandRunner {
  return (file, args, options = {}) => {
    observed.push({ file, args, env: options.env, timeoutMs: options.timeoutMs });
    const PATH = pathDirs.join(delimiter);
    return runCommand(file, args, { ...options, env: { ...(options.env ?? process.env), PATH } });
  };
}

async function fake(
  name: string,
  responses: FakeResponse[],
): Promise<{ dir: string; runner: CommandRunner; observed: Observed[] }> {
  const dir = tempDir();
  await makeRecordingFake(dir, name, responses);
  const observed: Observed[] = [];
  return { dir, runner: runnerWithPath([dir, dirname(process.execPath)], observed), observed };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

interface EnvEntry {
  name: string;
  value?: string;
  valueFrom?: unknown;
}

function deployment(
  containers: Array<{ name: string; env?: EnvEntry[] }>,
  status: { availableReplicas?: number; readyReplicas?: number } = {},
  replicas = 1,
): string {
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'api', namespace: 'prod' },
    spec: { replicas, template: { spec: { containers } } },
    status,
  });
}

const GET_API = ['get', 'deployment/api', '-n', 'prod', '-o', 'json'];
const SECRET_REF = { secretKeyRef: { name: 'flags', key: 'STRICT_MODE' } };

const flagStoreConfig = { type: 'kubernetes' as const, deployment: 'api', namespace: 'prod' };

describe('KubernetesFlagStore', () => {
  const containers = [
    {
      name: 'app',
      env: [
        { name: 'DUAL_WRITE_ENABLED', value: 'true' },
        { name: 'STRICT_MODE', valueFrom: SECRET_REF },
        { name: 'EMPTY_FLAG' },
        { name: 'LEGACY_WRITE_BLOCKED', value: 'false' },
      ],
    },
    { name: 'sidecar', env: [{ name: 'DUAL_WRITE_ENABLED', value: 'sidecar-value' }] },
  ];

  it('reads env values of the first container: literal, valueFrom (null), empty, absent (null)', async () => {
    const { dir, runner } = await fake('kubectl', [{ argv: GET_API, stdout: deployment(containers) }]);
    const store = new KubernetesFlagStore(flagStoreConfig, runner);

    const values = await store.read(['DUAL_WRITE_ENABLED', 'STRICT_MODE', 'EMPTY_FLAG', 'MISSING_FLAG']);

    expect(values).toEqual({ DUAL_WRITE_ENABLED: 'true', STRICT_MODE: null, EMPTY_FLAG: '', MISSING_FLAG: null });
    expect(readCalls(dir, 'kubectl')).toEqual([GET_API]);
  });

  it('reads the named container', async () => {
    const { dir, runner } = await fake('kubectl', [{ argv: GET_API, stdout: deployment(containers) }]);
    const store = new KubernetesFlagStore({ ...flagStoreConfig, container: 'sidecar' }, runner);

    expect(await store.read(['DUAL_WRITE_ENABLED', 'LEGACY_WRITE_BLOCKED'])).toEqual({
      DUAL_WRITE_ENABLED: 'sidecar-value',
      LEGACY_WRITE_BLOCKED: null,
    });
    expect(readCalls(dir, 'kubectl')).toEqual([GET_API]);
  });

  it('refuses a container the deployment does not have', async () => {
    const { runner } = await fake('kubectl', [{ argv: GET_API, stdout: deployment(containers) }]);
    const store = new KubernetesFlagStore({ ...flagStoreConfig, container: 'worker' }, runner);

    const error = await rejection(store.read(['DUAL_WRITE_ENABLED']));

    expect(error).toBeInstanceOf(ApplicationFailure);
    expect(error).toMatchObject({ type: 'EnvironmentInvalid', nonRetryable: true });
    expect((error as Error).message).toBe(
      'deployment/api in namespace prod has no container "worker" (containers: app, sidecar)',
    );
  });

  it('writes only what differs: KEY=VALUE for values, KEY- for null, with -c for the container', async () => {
    const setEnv = [
      'set',
      'env',
      'deployment/api',
      '-n',
      'prod',
      '-c',
      'app',
      'DUAL_WRITE_ENABLED=false',
      'NEW_FLAG=on',
      'STRICT_MODE-',
    ];
    const { dir, runner } = await fake('kubectl', [
      { argv: GET_API, stdout: deployment(containers) },
      { argv: setEnv, stdout: 'deployment.apps/api env updated\n' },
    ]);
    const store = new KubernetesFlagStore({ ...flagStoreConfig, container: 'app' }, runner);

    const result = await store.write({
      DUAL_WRITE_ENABLED: 'false',
      STRICT_MODE: null,
      LEGACY_WRITE_BLOCKED: 'false',
      NEW_FLAG: 'on',
      NEVER_SET: null,
    });

    expect(result).toEqual({ changed: true });
    expect(readCalls(dir, 'kubectl')).toEqual([GET_API, setEnv]);
  });

  it('replaces a valueFrom entry with a literal value, and omits -c without a container', async () => {
    const setEnv = ['set', 'env', 'deployment/api', '-n', 'prod', 'STRICT_MODE=true'];
    const { dir, runner } = await fake('kubectl', [
      { argv: GET_API, stdout: deployment(containers) },
      { argv: setEnv, stdout: 'deployment.apps/api env updated\n' },
    ]);
    const store = new KubernetesFlagStore(flagStoreConfig, runner);

    expect(await store.write({ STRICT_MODE: 'true', DUAL_WRITE_ENABLED: 'true' })).toEqual({ changed: true });
    expect(readCalls(dir, 'kubectl')).toEqual([GET_API, setEnv]);
  });

  it('writes nothing when every value is already as wanted', async () => {
    const { dir, runner } = await fake('kubectl', [{ argv: GET_API, stdout: deployment(containers) }]);
    const store = new KubernetesFlagStore(flagStoreConfig, runner);

    const result = await store.write({ DUAL_WRITE_ENABLED: 'true', EMPTY_FLAG: '', MISSING_FLAG: null });

    expect(result).toEqual({ changed: false });
    expect(readCalls(dir, 'kubectl')).toEqual([GET_API]);
  });

  it('refuses a flag name kubectl would read as something else', async () => {
    const { dir, runner } = await fake('kubectl', [{ argv: GET_API, stdout: deployment(containers) }]);
    const store = new KubernetesFlagStore(flagStoreConfig, runner);

    const error = await rejection(store.write({ '--overwrite=false': 'x' }));

    expect(error).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    expect(readCalls(dir, 'kubectl')).toEqual([]);
  });

  it('describes where the flags live', () => {
    expect(new KubernetesFlagStore({ ...flagStoreConfig, container: 'app' }).describe()).toBe(
      'kubernetes env of deployment/api in namespace prod container app',
    );
  });

  it('reports a missing kubectl as a non-retryable CommandRefused', async () => {
    const store = new KubernetesFlagStore(flagStoreConfig, runnerWithPath([tempDir()]));

    const error = await rejection(store.read(['DUAL_WRITE_ENABLED']));

    expect(error).toBeInstanceOf(ApplicationFailure);
    expect(error).toMatchObject({ type: 'CommandRefused', nonRetryable: true });
    expect((error as Error).message).toBe(
      'executable "kubectl" not found on PATH (running: kubectl get deployment/api -n prod -o json)',
    );
  });

  it('refuses to run when the variable named by kubeconfigEnv is not set', async () => {
    const variable = 'RUNBOOK_TEST_KUBECONFIG_NEVER_SET';
    delete process.env[variable];
    const { dir, runner } = await fake('kubectl', [{ argv: GET_API, stdout: deployment(containers) }]);
    const store = new KubernetesFlagStore({ ...flagStoreConfig, kubeconfigEnv: variable }, runner);

    const error = await rejection(store.read(['DUAL_WRITE_ENABLED']));

    expect(error).toBeInstanceOf(ApplicationFailure);
    expect(error).toMatchObject({ type: 'EnvironmentInvalid', nonRetryable: true });
    expect(readCalls(dir, 'kubectl')).toEqual([]);
  });

  it('passes KUBECONFIG from the variable named by kubeconfigEnv', async () => {
    const variable = 'RUNBOOK_TEST_KUBECONFIG';
    process.env[variable] = '/etc/runbooks/prod.kubeconfig';
    try {
      const { runner, observed } = await fake('kubectl', [{ argv: GET_API, stdout: deployment(containers) }]);
      const store = new KubernetesFlagStore({ ...flagStoreConfig, kubeconfigEnv: variable }, runner);

      await store.read(['DUAL_WRITE_ENABLED']);

      expect(observed.map((o) => o.env?.KUBECONFIG)).toEqual(['/etc/runbooks/prod.kubeconfig']);
    } finally {
      delete process.env[variable];
    }
  });
});

describe('KubernetesService', () => {
  const serviceConfig = { type: 'kubernetes' as const, deployment: 'api', namespace: 'prod', rolloutTimeout: '90s' };
  const RESTART = ['rollout', 'restart', 'deployment/api', '-n', 'prod'];

  it('reloads with a rollout restart, then waits with rollout status --timeout', async () => {
    const STATUS = ['rollout', 'status', 'deployment/api', '-n', 'prod', '--timeout=90s'];
    const { dir, runner, observed } = await fake('kubectl', [
      { argv: RESTART, stdout: 'deployment.apps/api restarted\n' },
      { argv: STATUS, stdout: 'deployment "api" successfully rolled out\n' },
    ]);

    await new KubernetesService(serviceConfig, runner).reload();

    expect(readCalls(dir, 'kubectl')).toEqual([RESTART, STATUS]);
    expect(observed.map((o) => o.timeoutMs)).toEqual([undefined, 120_000]);
  });

  it('restarts with the rollout timeout in whole seconds', async () => {
    const STATUS = ['rollout', 'status', 'deployment/api', '-n', 'prod', '--timeout=300s'];
    const { dir, runner } = await fake('kubectl', [
      { argv: RESTART, stdout: 'deployment.apps/api restarted\n' },
      { argv: STATUS, stdout: 'deployment "api" successfully rolled out\n' },
    ]);

    await new KubernetesService({ ...serviceConfig, rolloutTimeout: '5m' }, runner).restart();

    expect(readCalls(dir, 'kubectl')).toEqual([RESTART, STATUS]);
  });

  it('fails (retryably) when the rollout does not finish', async () => {
    const STATUS = ['rollout', 'status', 'deployment/api', '-n', 'prod', '--timeout=90s'];
    const { dir, runner } = await fake('kubectl', [
      { argv: RESTART, stdout: 'deployment.apps/api restarted\n' },
      { argv: STATUS, stderr: 'error: timed out waiting for the condition\n', exitCode: 1 },
    ]);

    const error = await rejection(new KubernetesService(serviceConfig, runner).restart());

    expect(error).not.toBeInstanceOf(ApplicationFailure);
    expect((error as Error).message).toBe(
      'command failed (kubectl rollout status deployment/api -n prod --timeout=90s): exit 1: ' +
        'error: timed out waiting for the condition',
    );
    expect(readCalls(dir, 'kubectl')).toEqual([RESTART, STATUS]);
  });

  it('stops by scaling to 0 and starts by scaling to 1, or to the configured replicas', async () => {
    const { dir, runner } = await fake('kubectl', [
      { argv: ['scale', 'deployment/api', '-n', 'prod', '--replicas=0'], stdout: 'deployment.apps/api scaled\n' },
      { argv: ['scale', 'deployment/api', '-n', 'prod', '--replicas=1'], stdout: 'deployment.apps/api scaled\n' },
      { argv: ['scale', 'deployment/api', '-n', 'prod', '--replicas=3'], stdout: 'deployment.apps/api scaled\n' },
    ]);

    await new KubernetesService(serviceConfig, runner).stop();
    await new KubernetesService(serviceConfig, runner).start();
    await new KubernetesService(serviceConfig, runner, { replicas: 3 }).start();

    expect(readCalls(dir, 'kubectl')).toEqual([
      ['scale', 'deployment/api', '-n', 'prod', '--replicas=0'],
      ['scale', 'deployment/api', '-n', 'prod', '--replicas=1'],
      ['scale', 'deployment/api', '-n', 'prod', '--replicas=3'],
    ]);
  });

  it('is running when at least one replica is available', async () => {
    const { dir, runner } = await fake('kubectl', [
      { argv: GET_API, stdout: deployment([{ name: 'app' }], { availableReplicas: 2, readyReplicas: 2 }, 3) },
    ]);

    expect(await new KubernetesService(serviceConfig, runner).status()).toEqual({
      running: true,
      detail: '2/3 replicas available, 2 ready',
    });
    expect(readCalls(dir, 'kubectl')).toEqual([GET_API]);
  });

  it('is not running without available replicas', async () => {
    const { runner } = await fake('kubectl', [{ argv: GET_API, stdout: deployment([{ name: 'app' }], {}, 0) }]);

    expect(await new KubernetesService(serviceConfig, runner).status()).toEqual({
      running: false,
      detail: '0/0 replicas available, 0 ready',
    });
  });

  it('reports a missing kubectl as a non-retryable CommandRefused', async () => {
    const error = await rejection(new KubernetesService(serviceConfig, runnerWithPath([tempDir()])).reload());

    expect(error).toBeInstanceOf(ApplicationFailure);
    expect(error).toMatchObject({ type: 'CommandRefused', nonRetryable: true });
  });

  it('refuses to run when the variable named by kubeconfigEnv is not set', async () => {
    const variable = 'RUNBOOK_TEST_KUBECONFIG_NEVER_SET';
    delete process.env[variable];
    const { dir, runner } = await fake('kubectl', []);

    const error = await rejection(
      new KubernetesService({ ...serviceConfig, kubeconfigEnv: variable }, runner).reload(),
    );

    expect(error).toMatchObject({ type: 'EnvironmentInvalid', nonRetryable: true });
    expect(readCalls(dir, 'kubectl')).toEqual([]);
  });
});

describe('KubernetesLogSource', () => {
  const logConfig = { type: 'kubernetes' as const, deployment: 'api', namespace: 'prod' };
  const CURSOR = '2025-03-04T05:06:07.089Z';
  const LOGS = ['logs', 'deployment/api', '-n', 'prod', `--since-time=${CURSOR}`, '--all-containers=true'];
  const lines = [
    'booting',
    'job=1 dual_write_scheduled',
    'job=2 dual_write_scheduled',
    'healthy',
    'job=3 dual_write_scheduled',
    'job=4 DUAL_WRITE_SCHEDULED',
    'job=5 dual_write_scheduled',
    'job=6 dual_write_scheduled',
    'job=7 dual_write_scheduled',
  ];

  it('counts matching lines since the cursor and samples at most 5', async () => {
    const { dir, runner } = await fake('kubectl', [{ argv: LOGS, stdout: lines.join('\n') + '\n' }]);

    const matches = await new KubernetesLogSource(logConfig, runner).matchesSince(CURSOR, /dual_write_scheduled/g);

    expect(matches).toEqual({
      count: 6,
      sample: [
        'job=1 dual_write_scheduled',
        'job=2 dual_write_scheduled',
        'job=3 dual_write_scheduled',
        'job=5 dual_write_scheduled',
        'job=6 dual_write_scheduled',
      ],
    });
    expect(readCalls(dir, 'kubectl')).toEqual([LOGS]);
  });

  it('counts nothing in empty logs', async () => {
    const { runner } = await fake('kubectl', [{ argv: LOGS, stdout: '' }]);

    expect(await new KubernetesLogSource(logConfig, runner).matchesSince(CURSOR, /dual_write_scheduled/)).toEqual({
      count: 0,
      sample: [],
    });
  });

  it('uses the current time as the cursor', async () => {
    const before = Date.now();
    const cursor = await new KubernetesLogSource(logConfig).cursor();

    expect(cursor).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(Date.parse(cursor)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(cursor)).toBeLessThanOrEqual(Date.now());
  });

  it('refuses a cursor that is not a timestamp', async () => {
    const { dir, runner } = await fake('kubectl', []);

    const error = await rejection(new KubernetesLogSource(logConfig, runner).matchesSince('--previous', /x/));

    expect(error).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    expect(readCalls(dir, 'kubectl')).toEqual([]);
  });
});

describe('SystemdService', () => {
  const unitConfig = { type: 'systemd' as const, unit: 'orders.service' };

  it('starts, stops and restarts the unit; reload restarts it', async () => {
    const { dir, runner } = await fake('systemctl', [
      { argv: ['start', 'orders.service'] },
      { argv: ['stop', 'orders.service'] },
      { argv: ['restart', 'orders.service'] },
    ]);
    const service = new SystemdService(unitConfig, runner);

    await service.start();
    await service.stop();
    await service.restart();
    await service.reload();

    expect(readCalls(dir, 'systemctl')).toEqual([
      ['start', 'orders.service'],
      ['stop', 'orders.service'],
      ['restart', 'orders.service'],
      ['restart', 'orders.service'],
    ]);
  });

  it('is running when is-active exits 0', async () => {
    const { dir, runner } = await fake('systemctl', [{ argv: ['is-active', 'orders.service'], stdout: 'active\n' }]);

    expect(await new SystemdService(unitConfig, runner).status()).toEqual({ running: true, detail: 'active' });
    expect(readCalls(dir, 'systemctl')).toEqual([['is-active', 'orders.service']]);
  });

  it('is not running when is-active prints inactive or failed with a non-zero exit', async () => {
    const inactive = await fake('systemctl', [
      { argv: ['is-active', 'orders.service'], stdout: 'inactive\n', exitCode: 3 },
    ]);
    const failed = await fake('systemctl', [
      { argv: ['is-active', 'orders.service'], stdout: 'failed\n', exitCode: 3 },
    ]);

    expect(await new SystemdService(unitConfig, inactive.runner).status()).toEqual({
      running: false,
      detail: 'inactive',
    });
    expect(await new SystemdService(unitConfig, failed.runner).status()).toEqual({ running: false, detail: 'failed' });
  });

  it('fails when is-active fails without reporting a state', async () => {
    const { runner } = await fake('systemctl', [
      {
        argv: ['is-active', 'orders.service'],
        stderr: "System has not been booted with systemd as init system (PID 1). Can't operate.\n",
        exitCode: 1,
      },
    ]);

    const error = await rejection(new SystemdService(unitConfig, runner).status());

    expect((error as Error).message).toBe(
      'command failed (systemctl is-active orders.service): exit 1: ' +
        "System has not been booted with systemd as init system (PID 1). Can't operate.",
    );
  });

  it('fails when a unit command fails', async () => {
    const { runner } = await fake('systemctl', [
      { argv: ['restart', 'orders.service'], stderr: 'Failed to restart orders.service: Access denied\n', exitCode: 4 },
    ]);

    await expect(new SystemdService(unitConfig, runner).restart()).rejects.toThrow(
      'command failed (systemctl restart orders.service): exit 4: Failed to restart orders.service: Access denied',
    );
  });

  it('refuses a unit name systemctl would read as an option', () => {
    expect(() => new SystemdService({ type: 'systemd', unit: '--force' })).toThrow(ApplicationFailure);
  });
});

describe('ComposeService', () => {
  const composeConfig = { type: 'compose' as const, file: '/srv/orders/docker-compose.yml', service: 'api' };
  const PS = ['compose', '-f', '/srv/orders/docker-compose.yml', 'ps', '--format', 'json', 'api'];

  it('restarts (also for reload), stops and starts with up -d', async () => {
    const { dir, runner } = await fake('docker', [
      { argv: ['compose', '-f', '/srv/orders/docker-compose.yml', 'restart', 'api'] },
      { argv: ['compose', '-f', '/srv/orders/docker-compose.yml', 'stop', 'api'] },
      { argv: ['compose', '-f', '/srv/orders/docker-compose.yml', 'up', '-d', 'api'] },
    ]);
    const service = new ComposeService(composeConfig, runner);

    await service.restart();
    await service.reload();
    await service.stop();
    await service.start();

    expect(readCalls(dir, 'docker')).toEqual([
      ['compose', '-f', '/srv/orders/docker-compose.yml', 'restart', 'api'],
      ['compose', '-f', '/srv/orders/docker-compose.yml', 'restart', 'api'],
      ['compose', '-f', '/srv/orders/docker-compose.yml', 'stop', 'api'],
      ['compose', '-f', '/srv/orders/docker-compose.yml', 'up', '-d', 'api'],
    ]);
  });

  it('is running when ps (one JSON object per line) shows the container running', async () => {
    const line = JSON.stringify({ Name: 'orders-api-1', Service: 'api', State: 'running', Status: 'Up 5 minutes' });
    const { dir, runner } = await fake('docker', [{ argv: PS, stdout: line + '\n' }]);

    expect(await new ComposeService(composeConfig, runner).status()).toEqual({
      running: true,
      detail: 'orders-api-1: running (Up 5 minutes)',
    });
    expect(readCalls(dir, 'docker')).toEqual([PS]);
  });

  it('is not running when ps (a JSON array) shows a container that is not running', async () => {
    const stdout = JSON.stringify([
      { Name: 'orders-api-1', Service: 'api', State: 'running', Status: 'Up 5 minutes' },
      { Name: 'orders-api-2', Service: 'api', State: 'restarting', Status: 'Restarting (1) 2 seconds ago' },
    ]);
    const { runner } = await fake('docker', [{ argv: PS, stdout }]);

    expect(await new ComposeService(composeConfig, runner).status()).toEqual({
      running: false,
      detail: 'orders-api-1: running (Up 5 minutes); orders-api-2: restarting (Restarting (1) 2 seconds ago)',
    });
  });

  it('is not running when ps lists no container', async () => {
    const { runner } = await fake('docker', [{ argv: PS, stdout: '' }]);

    expect(await new ComposeService(composeConfig, runner).status()).toEqual({
      running: false,
      detail: 'no running containers',
    });
  });

  it('parses both output formats of ps --format json', () => {
    const a = { Name: 'a', State: 'running' };
    const b = { Name: 'b', State: 'exited' };
    expect(parseComposePs(`${JSON.stringify(a)}\n${JSON.stringify(b)}\n`)).toEqual([a, b]);
    expect(parseComposePs(JSON.stringify([a, b]))).toEqual([a, b]);
    expect(parseComposePs('[]')).toEqual([]);
    expect(() => parseComposePs('NAME  IMAGE\n')).toThrow('docker compose ps returned output that is not JSON');
  });
});

describe('makeRecordingFake', () => {
  it('exits 97 with the argv on stderr when no response matches', async () => {
    const { dir, runner } = await fake('tool', [{ argv: ['a'], stdout: 'ok' }]);

    await expect(runner('tool', ['a'])).resolves.toEqual({ stdout: 'ok', stderr: '' });
    await expect(runner('tool', ['a', 'b'])).rejects.toThrow(
      'command failed (tool a b): exit 97: unexpected argv: ["a","b"]',
    );
    expect(readCalls(dir, 'tool')).toEqual([['a'], ['a', 'b']]);
  });
});
