import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { environmentHeader } from '../src/demo/environment.js';
import { approveSignal } from '../src/shared/messages.js';
import type { RunbookResult } from '../src/shared/types.js';
import { makeStatefulKubectl } from './fakes/fake-kubectl.js';
import { readCalls } from './fakes/make-fake.js';
import { Harness } from './support/harness.js';
import { fakeEndpoint } from './support/triage.js';

const h = new Harness();
const bin = join(h.root, 'bin');
beforeAll(async () => {
  mkdirSync(bin, { recursive: true });
  // the worker's kubectl is the recording fake (in this test file's process only)
  process.env.PATH = `${bin}:${process.env.PATH}`;
  await h.start();
});
afterAll(() => h.close());

const DUAL = 'TEAM_VNEXT_DUAL_WRITE_ENABLED';

describe('feature-flag rollback through a ConfigMap (scenario 1, method 2)', () => {
  it('patches the ConfigMap, restarts the Deployment, verifies; other keys kept', async () => {
    const data = { [DUAL]: 'true', TEAM_VNEXT_DUAL_WRITE_STRICT_MODE: 'true', APP_NAME: 'deltacrown' };
    await makeStatefulKubectl(bin, {
      configmaps: { 'deltacrown/deltacrown-config': { data } },
      deployments: {
        'deltacrown/deltacrown-web': { spec: { replicas: 3 }, status: { availableReplicas: 3, readyReplicas: 3 } },
      },
    });
    const health = await fakeEndpoint(h, { health: 200 });
    const envName = `cm${process.pid}`;
    mkdirSync(h.environmentsDir, { recursive: true });
    writeFileSync(
      join(h.environmentsDir, `${envName}.yaml`),
      stringify({
        ...environmentHeader({ name: envName }),
        targets: {
          web: {
            flags: {
              store: { type: 'kubernetes-configmap', configMap: 'deltacrown-config', namespace: 'deltacrown' },
              names: {
                dualWriteEnabled: DUAL,
                strictMode: 'TEAM_VNEXT_DUAL_WRITE_STRICT_MODE',
                legacyWriteBlocked: 'TEAM_VNEXT_LEGACY_WRITE_BLOCKED',
              },
            },
            service: { type: 'kubernetes', deployment: 'deltacrown-web', namespace: 'deltacrown' },
            health: { http: { url: `${health.url}/health`, within: '2s' } },
          },
        },
      }),
    );
    const handle = await h.startRun({ environment: envName, mode: 'disable-dual-write' });
    const waiting = await h.waitForApproval(handle);
    expect(waiting.plan!.changes).toEqual([{ item: DUAL, from: 'true', to: 'false' }]);
    expect((waiting.plan!.details as { flagStore: string }).flagStore).toBe(
      'kubernetes configmap/deltacrown-config in namespace deltacrown',
    );
    await handle.signal(approveSignal, { by: 'alice', planHash: waiting.planHash! });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');

    const state = JSON.parse(readFileSync(join(bin, 'kubectl.state.json'), 'utf8'));
    expect(state.configmaps['deltacrown/deltacrown-config'].data).toEqual({ ...data, [DUAL]: 'false' });
    const calls = readCalls(bin, 'kubectl');
    expect(calls).toContainEqual([
      'patch',
      'configmap',
      'deltacrown-config',
      '-n',
      'deltacrown',
      '--type',
      'merge',
      '-p',
      JSON.stringify({ data: { [DUAL]: 'false' } }),
    ]);
    expect(calls.filter((c) => c[0] === 'rollout' && c[1] === 'restart')).toEqual([
      ['rollout', 'restart', 'deployment/deltacrown-web', '-n', 'deltacrown'],
    ]);
  });
});
