import {
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { BatchResult, JobActivities } from '../activities/migration/jobs/activities.js';
import { pauseSignal, replayProgressSignal, resumeSignal, type ReplayProgress } from '../shared/messages.js';
import { runbookActivities } from './engine/activity-options.js';

// a batch heartbeats per job: a killed worker is noticed within the preset's 10 s and the retry resumes
const { requeueJobBatch } = runbookActivities<JobActivities>('long');

export interface RequeueInput {
  ref: { environment: string; target: string };
  plan: { path: string; sha256: string; total: number };
  /** `<workflowId>/<first run id>` of the job-replay run */
  keyPrefix: string;
  /** the job-replay run, told the totals after every batch */
  parentWorkflowId: string;
  /** the next plan line; advances across continue-as-new */
  from: number;
  batch: number;
  concurrency: number;
  paceMs: number;
  /** continue-as-new after this many batches (or when the server suggests it) */
  batchesPerGeneration: number;
  paused: boolean;
  totals?: ReplayProgress;
}

export const emptyProgress = (): ReplayProgress => ({
  requeued: 0,
  already: 0,
  vanished: 0,
  moved: 0,
  done: 0,
  generation: 1,
  vanishedIds: [],
  movedIds: [],
});

const MAX_IDS = 100;

function add(t: ReplayProgress, r: BatchResult, lines: number): void {
  t.requeued += r.requeued;
  t.already += r.already;
  t.vanished += r.vanished;
  t.moved += r.moved;
  t.done += lines;
  t.vanishedIds = [...t.vanishedIds, ...r.vanishedIds].slice(0, MAX_IDS);
  t.movedIds = [...t.movedIds, ...r.movedIds].slice(0, MAX_IDS);
}

/**
 * The requeueing of a job-replay run, as its child: reads its plan (by digest) from the cursor `from`, `batch`
 * lines per activity, at most `concurrency` in flight, a durable timer of `pace` after each batch, pausing between
 * batches while paused (pause/resume reach it from the parent or directly). Continues-as-new every
 * `batchesPerGeneration` batches (or when the server suggests it) carrying cursor, totals and pause state, so a
 * replay of 10,000 jobs never grows one history large. Tells the parent its totals after every batch.
 */
export async function jobReplayRequeue(input: RequeueInput): Promise<ReplayProgress> {
  const totals: ReplayProgress = input.totals ?? emptyProgress();
  let paused = input.paused;
  setHandler(pauseSignal, () => void (paused = true));
  setHandler(resumeSignal, () => void (paused = false));
  const parent = getExternalWorkflowHandle(input.parentWorkflowId);
  const { total } = input.plan;
  let next = input.from;
  let batches = 0;
  let rotate = false;

  const lane = async (): Promise<void> => {
    for (;;) {
      await condition(() => !paused);
      if (next >= total || rotate) return;
      if (batches >= input.batchesPerGeneration || workflowInfo().continueAsNewSuggested) {
        rotate = true;
        return;
      }
      const from = next;
      const to = Math.min(total, from + input.batch);
      next = to;
      batches += 1;
      const r = await requeueJobBatch({ ...input.ref, plan: input.plan, from, to, keyPrefix: input.keyPrefix });
      add(totals, r, to - from);
      await parent.signal(replayProgressSignal, { ...totals }).catch(() => undefined);
      if (input.paceMs > 0 && next < total) await sleep(input.paceMs);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, input.concurrency) }, lane));
  if (next < total) {
    return continueAsNew<typeof jobReplayRequeue>({
      ...input,
      from: next,
      paused,
      totals: { ...totals, generation: totals.generation + 1 },
    });
  }
  return totals;
}
