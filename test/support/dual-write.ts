import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import { abortSignal, approveSignal } from '../../src/shared/messages.js';
import type { RunbookResult } from '../../src/shared/types.js';
import type { DualWriteRollbackInput } from '../../src/shared/schemas.js';
import { diffStores, type DiffOptions } from '../../src/activities/stores/diff.js';
import { ObjectStore } from '../../src/activities/stores/object-store.js';
import { PostgresTableStore } from '../../src/activities/stores/postgres-table.js';
import { SqliteTableStore } from '../../src/activities/stores/sqlite-table.js';
import type { ObjectStoreAdapter, ObjectMeta, StoredObject } from '../../src/activities/stores/types.js';
import { sha256 } from '../../src/activities/digest.js';
import { seedDrift, type DriftSpec } from '../../src/demo/seed-drift.js';
import { writePairEnvironment } from './environments.js';
import { Harness } from './harness.js';
import { sigkill, startChildWorker, type ChildWorker } from './child-worker.js';

export type Pair = 'postgres-objectstore' | 'sqlite-objectstore' | 'postgres-sqlite';

/** A test file's harness (with its in-process worker) and a pool on the suite's Postgres, started and closed with the file. */
export function dualWriteSuite(): { h: Harness; pool: pg.Pool } {
  const h = new Harness();
  const pool = new pg.Pool({ connectionString: h.databaseUrl });
  beforeAll(() => h.start());
  afterAll(async () => {
    await h.close();
    await pool.end();
  });
  return { h, pool };
}
let n = 0;

export interface PairTarget {
  envName: string;
  a: ObjectStoreAdapter;
  b: ObjectStoreAdapter;
  injected: Awaited<ReturnType<typeof seedDrift>>;
  /** the directory holding this target's SQLite files, object-store roots and work directory */
  dir: string;
  workDir: string;
  /** per side: the Postgres table, the SQLite file or the object-store root */
  where: [string, string];
}

/** An environment with target "objects": two real stores seeded with known drift. */
export async function pairTarget(
  h: Harness,
  pool: pg.Pool,
  pair: Pair,
  spec: DriftSpec,
  dualWrite: Record<string, unknown> = {},
  extraTargets: Record<string, unknown> = {},
  urlEnv = 'DEMO_DATABASE_URL',
): Promise<PairTarget> {
  const envName = `dw${process.pid}-${n++}`;
  const dir = join(h.root, 'dw', envName);
  mkdirSync(dir, { recursive: true });
  const table = `dw_${process.pid}_${Date.now() % 1_000_000}_${n}`;
  const sides = pair.split('-') as Array<'postgres' | 'sqlite' | 'objectstore'>;
  const stores: ObjectStoreAdapter[] = [];
  const configs: unknown[] = [];
  const where: string[] = [];
  for (const [i, kind] of sides.entries()) {
    if (kind === 'postgres') {
      // Postgres keeps stored fingerprints (trigger-maintained column) in every pair
      const columns = { fingerprint: 'row_fp' };
      const store = new PostgresTableStore({ pool, table: `${table}_${i}`, create: true, columns });
      await store.init();
      stores.push(store);
      configs.push({ type: 'postgres', urlEnv, table: `${table}_${i}`, columns });
      where.push(`${table}_${i}`);
    } else if (kind === 'sqlite') {
      // SQLite stores them in postgres-sqlite and computes them per row in sqlite-objectstore
      const columns = pair === 'postgres-sqlite' ? { fingerprint: 'row_fp' } : {};
      const path = join(dir, `side${i}.sqlite`);
      stores.push(new SqliteTableStore({ path, table: 'objects', create: true, columns }));
      configs.push({ type: 'sqlite', path, table: 'objects', columns });
      where.push(path);
    } else {
      const root = join(dir, `store${i}`);
      stores.push(await ObjectStore.open(root));
      configs.push({ type: 'object-store', root });
      where.push(root);
    }
  }
  const injected = await seedDrift(stores[0]!, stores[1]!, spec);
  const workDir = join(dir, 'work');
  writePairEnvironment(h.environmentsDir, envName, {
    a: configs[0],
    b: configs[1],
    workDir,
    dualWrite: { batchSize: 7, ...dualWrite },
    extraTargets,
  });
  return { envName, a: stores[0]!, b: stores[1]!, injected, dir, workDir, where: [where[0]!, where[1]!] };
}

/** An object holding `text`, created and updated at `at`. */
export function storedObject(id: string, version: number, text: string, at = Date.UTC(2026, 5, 1)): StoredObject {
  const content = Buffer.from(text);
  return {
    objectId: id,
    version,
    content,
    size: content.length,
    sha256: sha256(content),
    createdAt: at,
    updatedAt: at,
  };
}

export async function allMeta(store: ObjectStoreAdapter): Promise<ObjectMeta[]> {
  const rows: ObjectMeta[] = [];
  for await (const page of store.scan({}, 1000)) rows.push(...page);
  return rows;
}

/** Differences left between the pair's stores (the streaming merge unless told otherwise). */
export async function differences(
  t: Pick<PairTarget, 'a' | 'b'>,
  options: DiffOptions = { mergeOnly: true },
): Promise<number> {
  let count = 0;
  for await (const _e of diffStores(t.a, t.b, {}, options)) count++;
  return count;
}

/** A dualWriteRollback of the target "objects" on the harness's task queue (the bench passes its own world). */
export function startDualWrite(
  h: Pick<Harness, 'client' | 'taskQueue'>,
  t: Pick<PairTarget, 'envName'>,
  input: Partial<DualWriteRollbackInput> = {},
): Promise<WorkflowHandle> {
  return h.client.workflow.start('dualWriteRollback', {
    taskQueue: h.taskQueue,
    workflowId: `dwr-${t.envName}-${process.pid}-${n++}`,
    args: [
      {
        environment: t.envName,
        target: 'objects',
        requester: 'rita',
        policy: 'postgres-authoritative',
        reason: 'drift alert',
        ...input,
      },
    ],
  });
}

export async function approveWhenReady(h: Harness, handle: WorkflowHandle): Promise<void> {
  const s = await h.waitForApproval(handle);
  await handle.signal(approveSignal, { by: 'alice', planHash: s.planHash! });
}

/** How the last attempt of the workflow's `activity` failed, from the history (undefined when it did not). */
export async function activityFailure(
  handle: WorkflowHandle,
  activity: string,
): Promise<{ type: string; nonRetryable: boolean; message: string; attempt: number } | undefined> {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activity);
  if (!scheduled) return undefined;
  const id = String(scheduled.eventId);
  const started = events.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === id);
  const failed = events.find((e) => String(e.activityTaskFailedEventAttributes?.scheduledEventId) === id);
  const failure = failed?.activityTaskFailedEventAttributes?.failure;
  if (!failure) return undefined;
  const cause = failure.cause ?? failure;
  return {
    type: cause.applicationFailureInfo?.type ?? '',
    nonRetryable: Boolean(cause.applicationFailureInfo?.nonRetryable),
    message: cause.message ?? '',
    attempt: started?.activityTaskStartedEventAttributes?.attempt ?? 0,
  };
}

/** How many attempts the workflow's (first) `activity` took, from the history. */
export async function activityAttempts(handle: WorkflowHandle, activity: string): Promise<number> {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activity);
  const id = String(scheduled?.eventId);
  const started = events.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === id);
  return started?.activityTaskStartedEventAttributes?.attempt ?? 0;
}

/** Every object of a store with its content, in key order: what "byte-identical" compares. */
export async function everything(store: ObjectStoreAdapter): Promise<Array<ObjectMeta & { content: string }>> {
  const objects = await store.get(await allMeta(store));
  return objects.map((o) => ({ ...o, content: o.content.toString('base64') }));
}

/** Starts a repair, approves it, and aborts it `afterMs` into the execute step. */
export async function abortDuringExecute(
  h: Harness,
  t: PairTarget,
  afterMs: number,
): Promise<{ handle: WorkflowHandle; result: RunbookResult }> {
  const handle = await startDualWrite(h, t);
  await approveWhenReady(h, handle);
  await h.waitFor(handle, (s) => s.currentStep === 'execute');
  await new Promise((r) => setTimeout(r, afterMs));
  await handle.signal(abortSignal, { by: 'carol', reason: 'wrong policy' });
  return { handle, result: (await handle.result()) as RunbookResult };
}

/** Where a SIGKILL struck a partitioned repair: the worker process and the partition chunk it was running. */
export interface PartitionKill {
  pid: number;
  partition: number;
  /** the partition's run (it continues as new) and the chunk's activity in it */
  runId: string;
  activityId: string;
}

/** The partition chunks (first attempts) that worker processes hold now, per the server. */
async function runningChunks(h: Harness, workflowId: string, partitions: number) {
  const states = await Promise.all(
    Array.from({ length: partitions }, (_, i) =>
      h.client.workflow
        .getHandle(`${workflowId}--partition-${i}`)
        .describe()
        .catch(() => undefined),
    ),
  );
  const chunks: PartitionKill[] = [];
  for (const [partition, d] of states.entries())
    for (const a of d?.status.name === 'RUNNING' ? (d.raw.pendingActivities ?? []) : [])
      // PENDING_ACTIVITY_STATE_STARTED = 2: a worker holds the chunk
      if (a.state === 2 && a.attempt === 1 && a.lastWorkerIdentity)
        chunks.push({
          pid: Number(a.lastWorkerIdentity.split('@')[0]),
          partition,
          runId: d!.runId,
          activityId: a.activityId!,
        });
  return { completed: states.filter((d) => d?.status.name === 'COMPLETED').length, chunks };
}

/**
 * Waits until at least one partition has completed while others run, then SIGKILLs a worker process holding a
 * partition's chunk. What the server still shows that process holding after the kill is what its retry must finish
 * (if the chunk completed in between, the kill missed: a replacement process joins and another one is killed).
 */
async function killMidRepair(
  h: Harness,
  handle: WorkflowHandle,
  processes: ChildWorker[],
  children: ChildProcess[],
  partitions: number,
): Promise<PartitionKill> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const { completed, chunks } = await runningChunks(h, handle.workflowId, partitions);
    if (completed === partitions) throw new Error('every partition completed before a worker could be killed');
    const worker = completed > 0 ? processes.find((w) => chunks.some((c) => c.pid === w.child.pid)) : undefined;
    if (worker) {
      await sigkill(worker.child);
      processes.splice(processes.indexOf(worker), 1);
      const held = (await runningChunks(h, handle.workflowId, partitions)).chunks.find(
        (c) => c.pid === worker.child.pid,
      );
      if (held) return held;
      processes.push(await startChildWorker(h, children, 0, { MAX_CONCURRENT_ACTIVITIES: '1' }));
    }
    if (Date.now() > deadline) throw new Error('no partition chunk running after a partition completed');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The pids (identity <pid>@<host>) of the activity starts in a workflow run's history, by activity id. */
async function activityStarts(
  h: Harness,
  workflowId: string,
  runId?: string,
): Promise<Array<{ activityId: string; pid: number; attempt: number }>> {
  const events = (await h.client.workflow.getHandle(workflowId, runId).fetchHistory()).events ?? [];
  const scheduled = new Map<string, string>();
  for (const e of events)
    if (e.activityTaskScheduledEventAttributes)
      scheduled.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityId ?? '');
  return events
    .filter((e) => e.activityTaskStartedEventAttributes?.identity)
    .map((e) => {
      const a = e.activityTaskStartedEventAttributes!;
      return {
        activityId: scheduled.get(String(a.scheduledEventId)) ?? '',
        pid: Number(a.identity!.split('@')[0]),
        attempt: a.attempt ?? 0,
      };
    });
}

/**
 * A 10k-object repair (600 actions) as partition child workflows of 100 objects that continue as new, shared by
 * `workers` worker processes (one activity at a time each, `workers` partitions at once): it completes, every
 * partition applied its 100 actions, and the partitions' repair activities ran on every one of the processes.
 * With `killOne`, one process is SIGKILLed mid-repair (a partition done, others running): the others finish the
 * repair, the killed process's chunk included.
 */
export async function partitionedRepair(
  h: Harness,
  pool: pg.Pool,
  children: ChildProcess[],
  workers: number,
  { killOne = false } = {},
): Promise<{ handle: WorkflowHandle; killed?: PartitionKill }> {
  const t = await pairTarget(
    h,
    pool,
    'postgres-objectstore',
    {
      objects: 10_000,
      drift: { content_mismatch: 300, missing_in_b: 200, missing_in_a: 100 },
      newer: 'a',
      batch: 5000,
    },
    {
      batchSize: 20,
      parallelism: 1,
      // with a kill: chunks long enough (2 batches) that the kill finds the chunk it aims at still running
      batchPause: killOne ? '150ms' : '20ms',
      partitionObjects: 100,
      partitionWindow: workers,
      chunkObjects: 40,
    },
  );
  const processes: ChildWorker[] = [];
  for (let i = 0; i < workers; i++)
    processes.push(await startChildWorker(h, children, 0, { MAX_CONCURRENT_ACTIVITIES: '1' }));
  const handle = await startDualWrite(h, t, { maxPartitionHistory: 12 });
  await approveWhenReady(h, handle);
  const all = [...processes];
  const killed = killOne ? await killMidRepair(h, handle, processes, children, 6) : undefined;
  const result = (await handle.result()) as RunbookResult;
  expect(result.outcome).toBe('succeeded');
  expect(await differences(t)).toBe(0);
  const evidence = JSON.parse(readFileSync(result.evidence!.path, 'utf8'));
  const execution = evidence.extra.execution as {
    applied: number;
    partitions: number;
    results: Array<{ applied: number; generations: number }>;
  };
  expect(execution.partitions).toBe(6);
  expect(execution.applied).toBe(600);
  expect(execution.results.map((r) => r.applied)).toEqual([100, 100, 100, 100, 100, 100]);
  expect(execution.results.every((r) => r.generations >= 2)).toBe(true);
  // the partitions' repair activities ran on every worker process started first and not killed
  const survivors = all.filter((w) => processes.includes(w)).map((w) => w.child.pid!);
  const alive = processes.map((w) => w.child.pid!);
  const pids = new Set<number>();
  for (let i = 0; i < 6; i++)
    for (const s of await activityStarts(h, `${handle.workflowId}--partition-${i}`)) pids.add(s.pid);
  if (!killed) expect([...pids].sort()).toEqual(survivors.sort());
  else {
    expect(survivors.filter((pid) => !pids.has(pid))).toEqual([]);
    // the killed process's chunk: retried after the heartbeat timeout and completed by a process still alive
    const starts = await activityStarts(h, `${handle.workflowId}--partition-${killed.partition}`, killed.runId);
    const chunk = starts.find((s) => s.activityId === killed.activityId);
    expect(chunk?.attempt).toBeGreaterThanOrEqual(2);
    expect(alive).toContain(chunk?.pid);
  }
  const parent = await handle.fetchHistory();
  expect(parent.events!.length).toBeLessThan(200);
  return { handle, killed };
}
