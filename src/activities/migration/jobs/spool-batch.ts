import { closeSync, fdatasync, linkSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { fsyncDir as syncDir } from '../../sqlite/forensics.js';
import type { JobState, RequeueOutcome, RequeueRequest } from '../types.js';
import { invalidJob, JOB_STATES } from './errors.js';

const fdatasyncAsync = promisify(fdatasync);

/** What the batch requeue needs of the spool (SpoolJobSource). */
export interface SpoolLayout {
  /** `jobs/<state>/<id>.json` */
  path(state: JobState, id: string): string;
  /** `jobs/.replay/`, made (with queue/) once */
  stagingDir(): Promise<string>;
  /** the one-job requeue: every case that is not the plain one goes through it */
  requeue(id: string, from: JobState, key: string): Promise<RequeueOutcome>;
}

/** jobs per group: one group's staged copies are fdatasynced together, its directories fsynced once */
export const SPOOL_GROUP = 250;

interface Plain {
  i: number;
  source: string;
  staged: string;
  target: string;
  text: string;
  fd?: number;
}

const code = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code;

const unlinkIfThere = (path: string): void => {
  try {
    unlinkSync(path);
  } catch (err) {
    if (code(err) !== 'ENOENT') throw err;
  }
};

/** a new file (its fd): a crash's leftover of that name (maybe linked into queue/ already) is never written through */
function createNew(path: string): number {
  try {
    return openSync(path, 'wx', 0o644);
  } catch (err) {
    if (code(err) !== 'EEXIST') throw err;
  }
  unlinkSync(path);
  return openSync(path, 'wx', 0o644);
}

/**
 * The plain case of a job, or undefined for the one-job path: its source in `from` is a JSON object without the
 * key, and it has no file in any other state. Looked at in the processor's order (queue → processing →
 * failed/completed) as the one-job path does, so a keyed copy moving on while we look is still seen.
 */
function plainCase(spool: SpoolLayout, job: RequeueRequest): { source: string; text: string } | undefined {
  if (job.from === 'queue') return undefined; // requeue in place: a rename, one by one
  let text: string | undefined;
  const source = spool.path(job.from, job.id);
  for (const state of JOB_STATES) {
    if (state !== job.from) {
      if (statSync(spool.path(state, job.id), { throwIfNoEntry: false })) return undefined;
      continue;
    }
    try {
      text = readFileSync(source, 'utf8');
    } catch (err) {
      if (code(err) === 'ENOENT') return undefined; // vanished or moved: the one-job path tells which
      throw err;
    }
  }
  let payload: unknown;
  try {
    payload = JSON.parse(text!);
  } catch (err) {
    throw invalidJob(job.id, source, `not JSON (${(err as Error).message})`);
  }
  if (!payload || typeof payload !== 'object' || Array.isArray(payload))
    throw invalidJob(job.id, source, 'not a JSON object');
  const replay = (payload as { replay?: { key?: unknown } }).replay;
  if (replay && replay.key === job.key) return undefined; // already: the one-job path says so
  return { source, text: `${JSON.stringify({ ...payload, replay: { key: job.key } })}\n` };
}

/**
 * One group, durable as a whole: every plain job's keyed copy is staged (written, then all fdatasynced together,
 * `.replay/` fsynced); then the sources are removed (before a copy is in queue/, so the processor cannot have
 * written a new file at a source's path yet), the staged copies linked into queue/ (never over a file), queue/ and
 * the sources' directories fsynced once; then the staging names removed. Every crash point leaves each job once
 * with its key or not requeued yet: a staged copy beside its source is rewritten by the retry, a staged copy whose
 * source is gone is linked by the retry (the one-job path), a queued copy is the retry's `already`. The rest of the
 * group (and a source that moved meanwhile) takes the one-job path.
 */
async function requeueGroup(spool: SpoolLayout, jobs: RequeueRequest[]): Promise<RequeueOutcome[]> {
  const staging = await spool.stagingDir();
  const outcomes: Array<RequeueOutcome | undefined> = new Array(jobs.length);
  const plain: Plain[] = [];
  jobs.forEach((job, i) => {
    const p = plainCase(spool, job);
    if (p) plain.push({ i, ...p, staged: join(staging, `${job.id}.json`), target: spool.path('queue', job.id) });
  });
  if (plain.length === 0) return finishOneByOne(spool, jobs, outcomes);
  try {
    for (const p of plain) {
      p.fd = createNew(p.staged);
      writeSync(p.fd, p.text);
    }
    // concurrent syncs share journal commits: a power loss after the sources go never leaves an empty job
    await Promise.all(plain.map((p) => fdatasyncAsync(p.fd!)));
  } finally {
    for (const p of plain) if (p.fd !== undefined) closeSync(p.fd);
  }
  await syncDir(staging);
  const taken = plain.filter((p) => {
    try {
      unlinkSync(p.source);
      return true;
    } catch (err) {
      if (code(err) !== 'ENOENT') throw err;
      unlinkIfThere(p.staged); // moved since it was read: the one-job path tells where
      return false;
    }
  });
  const linked = taken.filter((p) => {
    try {
      linkSync(p.staged, p.target);
      return true;
    } catch (err) {
      if (code(err) !== 'EEXIST') throw err;
      unlinkIfThere(p.staged); // a queued file appeared meanwhile: the one-job path tells whose
      return false;
    }
  });
  const dirs = new Set([spool.path('queue', '_'), ...taken.map((p) => p.source)].map((f) => dirname(f)));
  await Promise.all([...dirs].map(syncDir));
  for (const p of linked) {
    unlinkIfThere(p.staged);
    outcomes[p.i] = 'requeued';
  }
  await syncDir(staging);
  return finishOneByOne(spool, jobs, outcomes);
}

async function finishOneByOne(
  spool: SpoolLayout,
  jobs: RequeueRequest[],
  outcomes: Array<RequeueOutcome | undefined>,
): Promise<RequeueOutcome[]> {
  for (const [i, job] of jobs.entries()) outcomes[i] ??= await spool.requeue(job.id, job.from, job.key);
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
