import { renameSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { fsyncDir as syncDir } from '../../sqlite/forensics.js';
import type { JobState, RequeueOutcome, RequeueRequest } from '../types.js';
import { JOB_STATES } from './errors.js';
import { replayTag, spoolName } from './spool-names.js';

/** Tests only: called with a group's ids after their renames, before the directories are fsynced. */
export type SpoolHook = (ids: string[]) => void | Promise<void>;

/** What the batch requeue needs of the spool (SpoolJobSource). */
export interface SpoolLayout {
  /** `jobs/<state>/<name>` */
  file(state: JobState, name: string): string;
  /** queue/, made once */
  ensureQueue(): Promise<void>;
  /** forgets the last directory listing */
  relist(): void;
  /** the one-job requeue on the last listing: every case that is not the plain one goes through it */
  requeueListed(id: string, from: JobState, key: string, name?: string): Promise<RequeueOutcome>;
  readonly hook?: SpoolHook;
}

/** jobs per group: one fsync per directory a group, and the outcomes reported (a cursor recorded) per group */
export const SPOOL_GROUP = 250;

const code = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code;

/**
 * One group (spool.ts has the protocol): a job whose tagged name is in no state is renamed from its planned file to
 * `queue/<id>~<tag>.json` (`<id>.json` when the plan has no name); queue/ and the sources' directories are fsynced once,
 * then the group is reported. A job requeued in place (from queue/), found tagged, or whose file is not where it was
 * planned takes the one-job path, which tells `already`, `moved` or `vanished`. A crash anywhere leaves each job
 * either at its planned file or queued with the tag, and a retry tells which.
 */
async function requeueGroup(spool: SpoolLayout, jobs: RequeueRequest[]): Promise<RequeueOutcome[]> {
  await spool.ensureQueue();
  const outcomes: Array<RequeueOutcome | undefined> = new Array(jobs.length);
  const dirs = new Set<string>([dirname(spool.file('queue', '_'))]);
  const renamed: string[] = [];
  jobs.forEach((job, i) => {
    if (job.from === 'queue') return;
    const tagged = spoolName(job.id, replayTag(job.key));
    for (const state of JOB_STATES) if (statSync(spool.file(state, tagged), { throwIfNoEntry: false })) return;
    const source = spool.file(job.from, job.name ?? spoolName(job.id)); // a plan without names: `<id>.json`
    try {
      renameSync(source, spool.file('queue', tagged));
    } catch (err) {
      if (code(err) !== 'ENOENT') throw err;
      return; // not where it was planned: the one-job path tells where it went
    }
    dirs.add(dirname(source));
    renamed.push(job.id);
    outcomes[i] = 'requeued';
  });
  await spool.hook?.(renamed);
  await Promise.all([...dirs].map(syncDir));
  spool.relist(); // listed at most once for the group's other jobs, after its renames
  for (const [i, job] of jobs.entries()) outcomes[i] ??= await spool.requeueListed(job.id, job.from, job.key, job.name);
  return outcomes as RequeueOutcome[];
}

/** `JobSource.requeueMany` of the spool: groups of SPOOL_GROUP, one after another. */
export async function requeueSpoolBatch(
  spool: SpoolLayout,
  jobs: RequeueRequest[],
  onGroup?: (outcomes: RequeueOutcome[]) => void,
  group = SPOOL_GROUP,
): Promise<RequeueOutcome[]> {
  const all: RequeueOutcome[] = [];
  for (let i = 0; i < jobs.length; i += group) {
    const outcomes = await requeueGroup(spool, jobs.slice(i, i + group));
    all.push(...outcomes);
    onGroup?.(outcomes);
  }
  return all;
}
