import type { ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunbookResult } from '../src/shared/types.js';
import { sigkill, startChildWorker } from './support/child-worker.js';
import { Harness } from './support/harness.js';
import { saveHistory } from './support/histories.js';
import { approve, outcomeOf, startReplay, type ReplayResults } from './support/job-replay.js';
import { jobTarget } from './support/migration.js';

/** Workers in child processes, SIGKILLed while the replay requeues. */
const h = new Harness();
const children: ChildProcess[] = [];
beforeAll(() => h.start({ worker: false }));
afterEach(async () => {
  for (const c of children.splice(0)) await sigkill(c);
});
afterAll(async () => {
  await h.close();
});

const requeued = (s: { results?: Record<string, unknown> }) =>
  (s.results?.replay as ReplayResults | undefined)?.requeued ?? 0;

describe('job-replay survives worker kills', () => {
  it('kill storm during a 2,000-job replay: every job processed once, zero duplicates in the processor log; the requeue child continued-as-new', async () => {
    const t = await jobTarget(h, { replay: { batch: 10, concurrency: 2, pace: '0s' }, concurrency: 8 });
    const ids = await t.seedJobs(2000, 'failed', { prefix: 'k' });
    let worker = await startChildWorker(h, children);
    const handle = await startReplay(h, t, { kinds: ['failed'] });
    await approve(h, handle);
    for (const at of [300, 900, 1500]) {
      await h.waitFor(handle, (s) => requeued(s) >= at, 180_000);
      await sigkill(worker.child);
      worker = await startChildWorker(h, children);
    }
    const result: RunbookResult = await outcomeOf(handle);
    expect(result.outcome, result.error).toBe('succeeded');
    const extra = result.extra as {
      replay: { requeued: number; already: number; vanished: number; moved: number; generations: number };
      drain: { completed: number; failed: number };
    };
    expect(extra.replay.requeued + extra.replay.already).toBe(2000);
    expect(extra.replay).toMatchObject({ vanished: 0, moved: 0 });
    expect(extra.drain).toMatchObject({ completed: 2000, failed: 0 });
    expect(await t.counts()).toMatchObject({ queue: 0, processing: 0, failed: 0, completed: 2000 });
    // the processor's own log: each job completed exactly once, with this run's key
    expect(t.duplicates()).toBe(0);
    const completions = t.completions();
    expect(ids.filter((id) => completions.get(id) !== 1)).toEqual([]);

    // the requeue child's first run ended by continuing as new (200 batches, 100 per generation)
    expect(extra.replay.generations).toBeGreaterThanOrEqual(2);
    const parent = await handle.fetchHistory();
    const started = parent.events!.find((e) => e.childWorkflowExecutionStartedEventAttributes)!
      .childWorkflowExecutionStartedEventAttributes!.workflowExecution!;
    const first = await h.client.workflow.getHandle(started.workflowId!, started.runId!).fetchHistory();
    const last = first.events![first.events!.length - 1]!;
    expect(last.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
    expect(first.events!.length).toBeLessThan(10_000);
    await saveHistory(h.client, handle.workflowId, 'worker-killed', 'job-replay');
    await saveHistory(h.client, started.workflowId!, 'continued-as-new', 'job-replay-requeue', started.runId!);
  }, 300_000);
});
