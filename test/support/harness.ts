import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { pino, type Logger } from 'pino';
import { serviceFor } from '../../src/activities/adapters/index.js';
import { loadTarget } from '../../src/activities/environment.js';
import type { ServiceAdapter } from '../../src/activities/adapters/types.js';
import { writeDemoEnvironment, type DemoEnvironmentOptions } from '../../src/demo/environment.js';
import { createWorker } from '../../src/worker/worker.js';
import { StoreFactory } from '../../src/activities/stores/index.js';
import type { FeatureFlagRollbackInput } from '../../src/shared/schemas.js';
import type { RunbookStatus } from '../../src/shared/types.js';
import { freePort } from '../../src/dev/ports.js';
import { generateKeyPair, personKeyPath, writePrivateKey, type KeyPair } from '../../src/activities/keys.js';
import { repoRoot } from '../../src/dev/temporal-server.js';
import { parse as parseYaml } from 'yaml';
import { waitForClosed, waitForStatus } from './wait.js';

export interface DemoTarget {
  envName: string;
  port: number;
  envFile: string;
  logFile: string;
  pidFile: string;
  service: ServiceAdapter;
  initialFlags: string;
  /** the table the demo service writes to in the suite's Postgres */
  table: string;
  stats(): Promise<{ reloads: number; flagChanges: number; writes: number; dualWrites: number; pid: number }>;
  liveFlags(): Promise<Record<string, string>>;
  write(n: number): Promise<void>;
}

/** What a harness runs against: a Temporal server, a bundle of src/workflows, a Postgres. */
export interface HarnessWorld {
  temporalAddress: string;
  /** read when a worker starts (in process or as a child) */
  workflowBundlePath: string;
  databaseUrl: string;
  /** the in-process worker's logger (default: warn, on stdout) */
  log?: Logger;
}

let counter = 0;

/** A test's own task queue, environments dir, evidence dir and in-process worker on the shared dev server. */
export class Harness {
  readonly root = mkdtempSync(join(tmpdir(), 'durable-runbooks-'));
  readonly environmentsDir = join(this.root, 'environments');
  readonly evidenceDir = join(this.root, 'evidence');
  /** people's keys (RUNBOOK_CONFIG_DIR of CLI children) and the worker's evidence key live here */
  readonly configDir = join(this.root, 'config');
  readonly workerKey = generateKeyPair();
  readonly workerKeyFile = join(this.configDir, 'worker.key');
  readonly taskQueue = `test-${process.pid}-${Date.now()}-${counter++}`;
  readonly address: string;
  readonly bundlePath: string;
  /** the suite's real Postgres; demo services record their writes there */
  readonly databaseUrl: string;
  client!: Client;
  private connection?: Connection;
  private native?: NativeConnection;
  private worker?: { worker: Worker; running: Promise<void> };
  readonly stores = new StoreFactory();
  private targets: DemoTarget[] = [];
  private closers: Array<() => Promise<void>> = [];
  private readonly log: Logger;

  /** In a test file: the suite's server, bundle and Postgres (global-setup.ts). Elsewhere (the bench): its own. */
  constructor(
    world: HarnessWorld = {
      temporalAddress: inject('temporalAddress'),
      workflowBundlePath: inject('workflowBundlePath'),
      databaseUrl: inject('databaseUrl'),
    },
  ) {
    this.address = world.temporalAddress;
    this.bundlePath = world.workflowBundlePath;
    this.databaseUrl = world.databaseUrl;
    this.log = world.log ?? pino({ level: 'warn' });
  }

  async start(options: { worker?: boolean } = {}): Promise<this> {
    process.env.DEMO_DATABASE_URL = this.databaseUrl;
    await writePrivateKey(this.workerKeyFile, this.workerKey);
    this.connection = await Connection.connect({ address: this.address });
    this.client = new Client({ connection: this.connection });
    if (options.worker !== false) await this.startWorker();
    return this;
  }

  async startWorker(): Promise<void> {
    this.native ??= await NativeConnection.connect({ address: this.address });
    const worker = await createWorker({
      connection: this.native,
      namespace: 'default',
      taskQueue: this.taskQueue,
      environmentsDir: this.environmentsDir,
      evidenceDir: this.evidenceDir,
      log: this.log,
      stores: this.stores,
      client: this.client,
      signingKey: this.workerKey,
      workflowBundle: { codePath: this.bundlePath },
    });
    this.worker = { worker, running: worker.run() };
  }

  async stopWorker(): Promise<void> {
    if (!this.worker) return;
    this.worker.worker.shutdown();
    await this.worker.running;
    this.worker = undefined;
  }

  /** Env vars for a child process (CLI, worker) that should see this harness's world. */
  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
      ...process.env,
      TEMPORAL_ADDRESS: this.address,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: this.taskQueue,
      ENVIRONMENTS_DIR: this.environmentsDir,
      EVIDENCE_DIR: this.evidenceDir,
      WORKFLOW_BUNDLE_PATH: this.bundlePath,
      DEMO_DATABASE_URL: this.databaseUrl,
      RUNBOOK_CONFIG_DIR: this.configDir,
      WORKER_KEY_FILE: this.workerKeyFile,
      LOG_LEVEL: 'warn',
      ...extra,
    };
  }

  /** Writes an environment with a running demo service of its own. */
  async demoTarget(
    options: Partial<Omit<DemoEnvironmentOptions, 'environmentsDir' | 'dataDir' | 'port'>> = {},
  ): Promise<DemoTarget> {
    const port = await freePort();
    const envName = options.name ?? `env${process.pid}-${counter++}`;
    // unique per run, so a long-lived DATABASE_URL server never mixes runs
    const table = `writes_${process.pid}_${Date.now() % 1_000_000}_${envName.replace(/[^a-z0-9]/g, '_')}`;
    const files = writeDemoEnvironment({
      environmentsDir: this.environmentsDir,
      dataDir: join(this.root, 'data', envName),
      port,
      name: envName,
      table,
      ...options,
    });
    // the service exactly as the worker sees it in the environment file
    const service = serviceFor(await loadTarget(this.environmentsDir, envName, 'web'));
    await service.start();
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      if (
        await fetch(`${base}/health`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      if (i > 100) throw new Error('demo service did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    const target: DemoTarget = {
      envName,
      port,
      ...files,
      service,
      initialFlags: readFileSync(files.envFile, 'utf8'),
      table,
      stats: async () => (await fetch(`${base}/stats`)).json() as never,
      liveFlags: async () => (await fetch(`${base}/flags`)).json() as never,
      write: async (n) => {
        for (let i = 0; i < n; i++) await fetch(`${base}/write`, { method: 'POST' }).then((r) => r.arrayBuffer());
      },
    };
    this.targets.push(target);
    return target;
  }

  /** A person's Ed25519 key, where `runbook` children (RUNBOOK_CONFIG_DIR) find it for `--by <name>`. */
  async personKey(name: string): Promise<KeyPair> {
    const pair = generateKeyPair();
    await writePrivateKey(personKeyPath(name, { RUNBOOK_CONFIG_DIR: this.configDir }), pair, { overwrite: true });
    return pair;
  }

  /**
   * A demo target under the policy of environments/demo-signed.yaml (signatures required), with these people as
   * approvers and their keys inline; this harness's worker key is the trusted evidence key.
   */
  async signedDemoTarget(
    people: Record<string, KeyPair>,
    approval: Record<string, unknown> = {},
    options: Partial<Omit<DemoEnvironmentOptions, 'environmentsDir' | 'dataDir' | 'port' | 'approval'>> = {},
  ): Promise<DemoTarget> {
    const template = parseYaml(readFileSync(join(repoRoot, 'environments', 'demo-signed.yaml'), 'utf8')) as {
      approval: Record<string, unknown>;
    };
    const { approvers: _, ...policy } = template.approval;
    const approvers = Object.entries(people).map(([name, key]) => ({ name, key: key.publicKey }));
    return this.demoTarget({
      ...options,
      approval: { ...policy, approvers, ...approval },
      sections: { evidence: { workerKeys: [this.workerKey.publicKey] }, ...options.sections },
    });
  }

  async startRun(
    input: Partial<FeatureFlagRollbackInput> & { environment: string },
    workflowId?: string,
  ): Promise<WorkflowHandle> {
    return this.client.workflow.start('featureFlagRollback', {
      taskQueue: this.taskQueue,
      workflowId: workflowId ?? `ffr-${this.taskQueue}-${counter++}`,
      args: [{ target: 'web', mode: 'disable-dual-write', requester: 'rita', reason: 'test', ...input }],
      typedSearchAttributes: [
        { key: defineSearchAttributeKey('RunbookName', SearchAttributeType.KEYWORD), value: 'feature-flag-rollback' },
        { key: defineSearchAttributeKey('Environment', SearchAttributeType.KEYWORD), value: input.environment },
        { key: defineSearchAttributeKey('Target', SearchAttributeType.KEYWORD), value: input.target ?? 'web' },
      ],
    });
  }

  /** Polls the status query until `predicate` holds. */
  waitFor(
    handle: WorkflowHandle,
    predicate: (s: RunbookStatus) => boolean,
    timeoutMs = 60_000,
  ): Promise<RunbookStatus> {
    return waitForStatus(handle, predicate, timeoutMs);
  }

  /** Polls until the workflow (latest run) is closed; returns its status name. */
  waitForClosed(workflowId: string, timeoutMs = 30_000): Promise<string> {
    return waitForClosed(this.client, workflowId, timeoutMs);
  }

  waitForApproval(handle: WorkflowHandle): Promise<RunbookStatus> {
    return this.waitFor(handle, (s) => s.approval.waiting);
  }

  /** Runs at close(), after the worker stopped (targets of other kinds stop their services here). */
  onClose(fn: () => Promise<void>): void {
    this.closers.push(fn);
  }

  async close(): Promise<void> {
    await this.stopWorker();
    for (const t of this.targets) await t.service.stop();
    for (const fn of this.closers.reverse()) await fn();
    await this.stores.close();
    await this.native?.close();
    await this.connection?.close();
    // environments, evidence, keys and service files of this harness's runs (KEEP_TEST_FILES=1 keeps them)
    if (process.env.KEEP_TEST_FILES !== '1') rmSync(this.root, { recursive: true, force: true });
  }
}
