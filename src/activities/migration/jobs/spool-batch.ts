import {
  closeSync,
  fdatasync,
  fstatSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { fsyncDir as syncDir } from '../../sqlite/forensics.js';
import type { JobState, RequeueOutcome, RequeueRequest } from '../types.js';
import { invalidJob, JOB_STATES } from './errors.js';
import { carriesKey, chainName, hasStaged, newNonce, stagedJobs, type SpoolHook } from './spool-staging.js';

const fdatasyncAsync = promisify(fdatasync);

/** What the batch requeue needs of the spool (SpoolJobSource). */
export interface SpoolLayout {
  /** `jobs/<state>/<id>.json` */
  path(state: JobState, id: string): string;
  /** `jobs/.replay/`, made (with queue/) once */
  stagingDir(): Promise<string>;
  /** the one-job requeue: every case that is not the plain one goes through it */
  requeue(id: string, from: JobState, key: string): Promise<RequeueOutcome>;
  /** tests only: called at each step */
  readonly hook?: SpoolHook;
}

/** jobs per group: one group's staged copies are fdatasynced together, its directories fsynced once */
export const SPOOL_GROUP = 250;

interface Plain {
  i: number;
  id: string;
  key: string;
  source: string;
  /** the source's inode when it was read */
  ino: number;
  text: string;
  tmp: string;
  src: string;
  target: string;
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

/**
 * The plain case of a job, or undefined for the one-job path: its source in `from` is a JSON object without the
 * key, and it has no file in any other state. Looked at in the processor's order (queue → processing →
 * failed/completed) as the one-job path does, so a keyed copy moving on while we look is still seen.
 */
function plainCase(spool: SpoolLayout, job: RequeueRequest): { source: string; ino: number; text: string } | undefined {
  if (job.from === 'queue') return undefined; // requeue in place: one by one
  let read: { text: string; ino: number } | undefined;
  const source = spool.path(job.from, job.id);
  for (const state of JOB_STATES) {
    if (state !== job.from) {
      if (statSync(spool.path(state, job.id), { throwIfNoEntry: false })) return undefined;
      continue;
    }
    try {
      const fd = openSync(source, 'r');
      try {
        read = { ino: fstatSync(fd).ino, text: readFileSync(fd, 'utf8') };
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      if (code(err) === 'ENOENT') return undefined; // vanished or moved: the one-job path tells which
      throw err;
    }
  }
  let payload: unknown;
  try {
    payload = JSON.parse(read!.text);
  } catch (err) {
    throw invalidJob(job.id, source, `not JSON (${(err as Error).message})`);
  }
  if (!payload || typeof payload !== 'object' || Array.isArray(payload))
    throw invalidJob(job.id, source, 'not a JSON object');
  const replay = (payload as { replay?: { key?: unknown } }).replay;
  if (replay && replay.key === job.key) return undefined; // already: the one-job path says so
  return { source, ino: read!.ino, text: `${JSON.stringify({ ...payload, replay: { key: job.key } })}\n` };
}

/**
 * The source renamed into the job's chain; false (and the staged copy removed: never queued) when it is gone or
 * another file is at its path, or when what was taken is a file that came there since it was read and carries the
 * key (requeued and worked meanwhile), which goes back. The one-job path then tells what happened.
 */
function take(p: Plain): boolean {
  const taken = unlessMissing(() => {
    if (statSync(p.source).ino !== p.ino) return false;
    renameSync(p.source, p.src);
    return true;
  });
  const kept =
    taken &&
    unlessMissing(() => {
      if (statSync(p.src).ino === p.ino || !carriesKey(readFileSync(p.src, 'utf8'), p.key)) return true;
      renameSync(p.src, p.source);
      return false;
    }); // (gone: the chain was finished by an attempt that found it)
  if (!kept) unlinkIfThere(p.tmp);
  return kept;
}

/** `fn`, or false when a file it needs is missing */
function unlessMissing(fn: () => boolean): boolean {
  try {
    return fn();
  } catch (err) {
    if (code(err) !== 'ENOENT') throw err;
    return false;
  }
}

/**
 * One group, durable as a whole (spool-staging.ts names the chain of a job): every plain job's keyed copy is staged
 * under this attempt's own name (written, then all fdatasynced together, `.replay/` fsynced); then the sources are
 * taken out of their states into their chains (one attempt can take a source), the staged copies renamed into queue/
 * (the rename consumes a copy: queued once, by this attempt or by one that found the chain), queue/ and the sources'
 * directories fsynced once; then the taken sources removed. Every crash point, and another attempt of the same batch
 * working meanwhile, leaves each job once with its key or not requeued yet: a copy whose source was not taken is
 * never queued, a chain whose source was taken is finished by whoever finds it (the one-job path), a queued copy is
 * `already`. A job with anything staged already, and the rest of the group, takes the one-job path.
 */
async function requeueGroup(spool: SpoolLayout, jobs: RequeueRequest[]): Promise<RequeueOutcome[]> {
  const staging = await spool.stagingDir();
  const staged = stagedJobs(readdirSync(staging));
  const outcomes: Array<RequeueOutcome | undefined> = new Array(jobs.length);
  const plain: Plain[] = [];
  const nonce = newNonce();
  jobs.forEach((job, i) => {
    if (hasStaged(staged, job.id, job.key)) return;
    const p = plainCase(spool, job);
    if (!p) return;
    const name = (part: 'tmp' | 'src') => join(staging, chainName(job.id, job.key, `${nonce}${i.toString(16)}`, part));
    plain.push({
      i,
      id: job.id,
      key: job.key,
      ...p,
      tmp: name('tmp'),
      src: name('src'),
      target: spool.path('queue', job.id),
    });
  });
  if (plain.length === 0) return finishOneByOne(spool, jobs, outcomes);
  try {
    for (const p of plain) {
      p.fd = openSync(p.tmp, 'wx', 0o644);
      writeSync(p.fd, p.text);
    }
    // concurrent syncs share journal commits: a power loss after the sources go never leaves an empty job
    await Promise.all(plain.map((p) => fdatasyncAsync(p.fd!)));
  } finally {
    for (const p of plain) if (p.fd !== undefined) closeSync(p.fd);
  }
  await syncDir(staging);
  await spool.hook?.(
    'staged',
    plain.map((p) => p.id),
  );
  const taken = plain.filter(take);
  await spool.hook?.(
    'taken',
    taken.map((p) => p.id),
  );
  const queued = taken.filter((p) => {
    try {
      renameSync(p.tmp, p.target);
      return true;
    } catch (err) {
      if (code(err) !== 'ENOENT') throw err;
      return false; // queued by an attempt that found the chain: the one-job path says `already`
    }
  });
  const dirs = new Set([spool.path('queue', '_'), ...taken.map((p) => p.source)].map((f) => dirname(f)));
  await Promise.all([...dirs, staging].map(syncDir));
  await spool.hook?.(
    'queued',
    queued.map((p) => p.id),
  );
  for (const p of queued) {
    unlinkIfThere(p.src);
    outcomes[p.i] = 'requeued';
  }
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
