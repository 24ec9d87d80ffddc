import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import type { WorkflowHandle } from '@temporalio/client';
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { approveSignal } from '../../src/shared/messages.js';
import type { RunbookResult, RunbookStatus } from '../../src/shared/types.js';
import type { Harness } from './harness.js';
import type { JobTestTarget } from './migration.js';

/** The jobs table of docs/backend-migration.md (the demo processor creates the same when it is absent). */
export async function createJobsTable(pool: pg.Pool, table: string): Promise<void> {
  await pool.query(
    `CREATE TABLE IF NOT EXISTS ${table} (id text PRIMARY KEY, payload jsonb, status text NOT NULL, attempts int DEFAULT 0,
     started_at timestamptz, updated_at timestamptz DEFAULT now(), replay_key text, error text)`,
  );
}

let counter = 0;

/** Starts job-replay on a job target, with the search attributes the CLI sets. */
export function startReplay(
  h: Harness,
  t: Pick<JobTestTarget, 'envName'>,
  input: Record<string, unknown> = {},
  workflowId = `job-replay-${h.taskQueue}-${counter++}`,
): Promise<WorkflowHandle> {
  return h.client.workflow.start('jobReplay', {
    taskQueue: h.taskQueue,
    workflowId,
    args: [{ environment: t.envName, target: 'jobs', requester: 'rita', reason: 'test', ...input }],
    typedSearchAttributes: [
      { key: defineSearchAttributeKey('RunbookName', SearchAttributeType.KEYWORD), value: 'job-replay' },
      { key: defineSearchAttributeKey('Environment', SearchAttributeType.KEYWORD), value: t.envName },
      { key: defineSearchAttributeKey('Target', SearchAttributeType.KEYWORD), value: 'jobs' },
    ],
  });
}

export async function approve(h: Harness, handle: WorkflowHandle, by = 'alice'): Promise<RunbookStatus> {
  const s = await h.waitForApproval(handle);
  await handle.signal(approveSignal, { by, planHash: s.planHash! });
  return s;
}

/** A run's result, or the result a failed run carries in its failure's details. */
export async function outcomeOf(handle: WorkflowHandle): Promise<RunbookResult> {
  try {
    return (await handle.result()) as RunbookResult;
  } catch (err) {
    let e = err as { cause?: unknown; details?: unknown[] } | undefined;
    while (e && !e.details?.length) e = e.cause as typeof e;
    if (e?.details?.[0]) return e.details[0] as RunbookResult;
    throw err;
  }
}

/**
 * Processing-log lines of an interrupted processor: `Processing job X` with no later Completed/Failed line, and
 * `WARN Dual write failed job Y` (the secondary never got Y).
 */
export function writeGapLog(logDir: string, unfinished: string[], dualWriteFailed: string[] = []): void {
  mkdirSync(logDir, { recursive: true });
  const at = '2026-01-01T00:00:00.000Z';
  const lines = [
    ...unfinished.map((id) => `${at} INFO Processing job ${id} backend=heavydb replay=-`),
    ...dualWriteFailed.map((id) => `${at} WARN Dual write failed job ${id} secondary=parquet error=unavailable`),
  ];
  appendFileSync(join(logDir, 'job_processor_2026-01-01.log'), `${lines.join('\n')}\n`);
}

/** The replay results a run published (status `results.replay`). */
export interface ReplayResults {
  requeued: number;
  already: number;
  vanished: number;
  moved: number;
  remaining: number;
  paused: boolean;
  vanishedIds?: string[];
}
