/**
 * The cluster of `npm run cluster` (src/dev/cluster.ts) on its own ports and data directory — not the suite's dev
 * server: a runbook started with the `runbook` CLI runs to the end on the cluster's worker processes, `temporal`
 * finds it by our search attributes, the namespace keeps histories 30 days, and after a stop and a second start on
 * the same data the run is still there.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startCluster, freeBasePort, type Cluster } from '../src/dev/cluster.js';
import { DEFAULT_TASK_QUEUE } from '../src/shared/constants.js';
import { Harness } from './support/harness.js';
import { runbook, temporal } from './support/cli.js';
import { sqliteTarget } from './support/sqlite.js';

let dataDir: string;
let basePort: number;
let cluster: Cluster | undefined;
let harness: Harness | undefined;
let closed = false;

/** Whether a process with this pid exists. */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const json = <T>(stdout: string): T => JSON.parse(stdout) as T;

/** `read()` again until it returns a non-empty list (visibility is updated after the history, asynchronously). */
async function listedEventually<T>(read: () => Promise<T[]>): Promise<T[]> {
  for (let attempt = 0; ; attempt++) {
    const found = await read();
    if (found.length || attempt >= 100) return found;
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'durable-runbooks-cluster-'));
  basePort = await freeBasePort(2);
});

afterAll(async () => {
  await cluster?.stop();
  if (!closed) await harness?.close();
  if (process.env.KEEP_TEST_FILES !== '1') rmSync(dataDir, { recursive: true, force: true });
});

describe('npm run cluster: Postgres, four Temporal service processes, UI, two workers', () => {
  it('runs a runbook from the runbook CLI on its workers, finds it with temporal, and keeps it across a restart', async () => {
    // the workers see the test's environments and evidence dir; everything else as `npm run cluster`
    const h = new Harness({
      temporalAddress: `127.0.0.1:${basePort}`,
      workflowBundlePath: inject('workflowBundlePath'),
      databaseUrl: inject('databaseUrl'),
    });
    harness = h;
    const workerEnv = {
      ENVIRONMENTS_DIR: h.environmentsDir,
      EVIDENCE_DIR: h.evidenceDir,
      DEMO_DATABASE_URL: h.databaseUrl,
    };
    const options = { dataDir, basePort, workflowBundlePath: h.bundlePath, workerEnv };
    cluster = await startCluster({ ...options, workers: 2 });
    expect(cluster.address).toBe(h.address);
    await h.start({ worker: false });
    const workerPids = cluster.workers.map((w) => w.pid!);
    expect(workerPids).toHaveLength(2);

    const cluster1 = await temporal(['operator', 'cluster', 'describe', '--output', 'json'], cluster.address);
    expect(json<{ historyShardCount: number }>(cluster1.stdout).historyShardCount).toBe(4);
    const ns = await temporal(['operator', 'namespace', 'describe', '-n', 'default', '--output', 'json'], h.address);
    expect(json<{ config: { workflowExecutionRetentionTtl: string } }>(ns.stdout).config).toMatchObject({
      workflowExecutionRetentionTtl: `${30 * 86_400}s`,
    });

    // a SQLite backup of a target of the test's own (its application need not run for a backup)
    const t = await sqliteTarget(h, {
      seedBytes: 300_000,
      start: false,
      sections: { evidence: { workerKeys: [cluster.workerPublicKey] } },
    });
    const id = `cluster-smoke-backup-${Date.now()}`;
    const env = h.env({ TEMPORAL_TASK_QUEUE: DEFAULT_TASK_QUEUE });
    const args = ['start', 'sqlite-backup', '--env', t.envName, '--target', 'app', '--id', id];
    const run = await runbook([...args, '--requester', 'rita', '--reason', 'cluster smoke', '--wait'], env);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(readdirSync(t.backupsDir).filter((f) => f.endsWith('.db.gz'))).toHaveLength(1);

    // its activities ran in the cluster's worker processes (identity <pid>@<host>)
    const show = await temporal(['workflow', 'show', '--workflow-id', id, '--output', 'json'], h.address);
    const events = json<{
      events: Array<{ eventType: string; activityTaskStartedEventAttributes?: { identity: string } }>;
    }>(show.stdout).events;
    const pids = new Set(
      events.flatMap((e) =>
        e.activityTaskStartedEventAttributes
          ? [Number(e.activityTaskStartedEventAttributes.identity.split('@')[0])]
          : [],
      ),
    );
    expect(pids.size).toBeGreaterThan(0);
    for (const pid of pids) expect(workerPids).toContain(pid);
    expect(events.at(-1)!.eventType).toBe('EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED');

    const query = `RunbookName = 'sqlite-backup' AND Environment = '${t.envName}' AND Outcome = 'succeeded'`;
    const listed = async () => {
      const list = await temporal(['workflow', 'list', '--query', query, '--output', 'json'], h.address);
      return json<Array<{ execution: { workflowId: string }; status: string }>>(list.stdout || '[]');
    };
    expect((await listedEventually(listed)).map((w) => w.execution.workflowId)).toEqual([id]);
    // the Web UI server answers the same filter
    const uiQuery = `${cluster.uiUrl}/api/v1/namespaces/default/workflows?query=${encodeURIComponent(query)}`;
    const fromUi = await listedEventually(
      async () =>
        ((await (await fetch(uiQuery)).json()) as { executions?: Array<{ execution: { workflowId: string } }> })
          .executions ?? [],
    );
    expect(fromUi.map((w) => w.execution.workflowId)).toEqual([id]);

    // stop: nothing of it keeps running
    const pidsBefore = [
      ...workerPids,
      ...(['frontend', 'history', 'matching', 'worker', 'ui'] as const).map((s) => cluster!.servicePid(s)!),
    ];
    await h.close();
    closed = true;
    await cluster.stop();
    cluster = undefined;
    expect(pidsBefore.filter(alive)).toEqual([]);
    // and the cluster's record of its processes (Postgres included) is empty
    expect(JSON.parse(readFileSync(join(dataDir, 'processes.json'), 'utf8'))).toEqual({});

    // a second start on the same data, without workers: the run is still listed, with its search attributes
    cluster = await startCluster({ ...options, workers: 0, ui: false });
    const again = await listedEventually(listed);
    expect(again).toEqual([
      expect.objectContaining({
        execution: expect.objectContaining({ workflowId: id }),
        status: 'WORKFLOW_EXECUTION_STATUS_COMPLETED',
      }),
    ]);
  });
});
