import { link, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { JobRecord, JobSource, JobState, RequeueOutcome, RequeueRequest } from '../types.js';
import { invalidJob, JOB_STATES } from './errors.js';
import { fsyncDir as syncDir } from '../../sqlite/forensics.js';
import { requeueSpoolBatch } from './spool-batch.js';

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

interface JobFile {
  state: JobState;
  path: string;
  since: number;
  payload: Record<string, unknown>;
}

/**
 * The seed's spool: `<root>/jobs/{queue,processing,failed,completed}/<id>.json`. A requeue writes the job with
 * its `replay.key` to a staging file beside the state directories (`jobs/.replay/`, fdatasynced), removes the
 * source, then links the staged copy to `queue/<id>.json` (never over an existing file). Every crash point is safe
 * to retry: the key is looked for in every state first, so a job whose keyed copy exists is `already` (a source a
 * crash of older code left beside it is removed then, so the job never exists twice), and a job found only staged
 * with the key is linked then. `requeueMany` does the same
 * for a group of jobs at once (spool-batch.ts): one fdatasync round and one fsync per directory for the group.
 */
export class SpoolJobSource implements JobSource {
  private readonly jobs: string;

  constructor(readonly root: string) {
    this.jobs = join(root, 'jobs');
  }

  describe(): string {
    return `spool ${this.jobs}`;
  }

  private staging?: Promise<string>;

  /** `jobs/.replay/` (not a state: the processor never looks there), and queue/, made once */
  stagingDir(): Promise<string> {
    this.staging ??= (async () => {
      const dir = join(this.jobs, '.replay');
      await mkdir(dir, { recursive: true });
      await mkdir(join(this.jobs, 'queue'), { recursive: true });
      return dir;
    })();
    return this.staging;
  }

  path(state: JobState, id: string): string {
    return join(this.jobs, state, `${id}.json`);
  }

  private async ids(state: JobState): Promise<string[]> {
    try {
      return (await readdir(join(this.jobs, state)))
        .filter((n) => n.endsWith('.json') && !n.startsWith('.'))
        .map((n) => n.slice(0, -'.json'.length));
    } catch (err) {
      if (isMissing(err)) return [];
      throw err;
    }
  }

  async list(states: JobState[], page: { afterId?: string; limit: number }): Promise<JobRecord[]> {
    const all: Array<{ id: string; state: JobState }> = [];
    for (const state of states) for (const id of await this.ids(state)) all.push({ id, state });
    const after = page.afterId;
    const rows = all
      .filter((r) => after === undefined || r.id > after)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : JOB_STATES.indexOf(a.state) - JOB_STATES.indexOf(b.state)))
      .slice(0, page.limit);
    const records: JobRecord[] = [];
    for (const r of rows) {
      try {
        records.push({ ...r, since: (await stat(this.path(r.state, r.id))).mtimeMs });
      } catch (err) {
        if (!isMissing(err)) throw err; // moved since the directory was read: it shows up in its new state later
      }
    }
    return records;
  }

  /** The job's file in `state`, parsed; undefined when there is none (`since` only when asked: a stat more). */
  private async read(state: JobState, id: string, withSince = false): Promise<JobFile | undefined> {
    const path = this.path(state, id);
    let text: string;
    let since = 0;
    try {
      text = await readFile(path, 'utf8');
      if (withSince) since = (await stat(path)).mtimeMs;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    let payload: unknown;
    try {
      payload = JSON.parse(text);
    } catch (err) {
      throw invalidJob(id, path, `not JSON (${(err as Error).message})`);
    }
    if (!payload || typeof payload !== 'object' || Array.isArray(payload))
      throw invalidJob(id, path, 'not a JSON object');
    return { state, path, since, payload: payload as Record<string, unknown> };
  }

  async get(id: string): Promise<(JobRecord & { payload: Record<string, unknown> }) | undefined> {
    for (const state of JOB_STATES) {
      const f = await this.read(state, id, true);
      if (f) return { id, state, since: f.since, replayKey: keyOf(f.payload), payload: f.payload };
    }
    return undefined;
  }

  async requeue(id: string, from: JobState, key: string): Promise<RequeueOutcome> {
    // 1. the key in any state (in the processor's order queue → processing → failed/completed, so a keyed copy
    //    moving on while we look is still seen): requeued before by this run
    const copies = new Map<JobState, JobFile>();
    for (const state of JOB_STATES) {
      const f = await this.read(state, id).catch((err: unknown) => {
        if (state === from) throw err; // the source that is not JSON: named, not retried
        return undefined; // an unreadable copy elsewhere is not ours
      });
      if (!f) continue;
      if (keyOf(f.payload) === key) {
        // a crash between the link and the removal left the source behind: remove it, the job exists once
        const left =
          copies.get(from) ?? (state === from ? undefined : await this.read(from, id).catch(() => undefined));
        if (left && keyOf(left.payload) !== key) await unlink(left.path).catch(ignoreMissing);
        // ... and a staging name a crash left beside the queued copy
        await unlink(join(await this.stagingDir(), `${id}.json`)).catch(ignoreMissing);
        return 'already';
      }
      copies.set(state, f);
    }
    const staging = join(await this.stagingDir(), `${id}.json`);
    const source = copies.get(from);
    if (!source) return copies.size > 0 ? 'moved' : this.finishStaged(id, key, staging);
    if (from !== 'queue' && copies.has('queue')) return 'moved';

    // 2. the keyed copy, staged beside the state directories (fsynced, and its name: a power loss after the source
    //    is removed must not leave an empty job or none)
    await unlink(staging).catch(ignoreMissing); // a crash's leftover may be linked already: never write through it
    const fh = await open(staging, 'wx', 0o644);
    try {
      await fh.writeFile(`${JSON.stringify({ ...source.payload, replay: { key } })}\n`);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    const target = this.path('queue', id);
    if (from === 'queue') {
      // requeue in place: the rename over the queued file is the one atomic step
      await rename(staging, target);
      return 'requeued';
    }
    await syncDir(dirname(staging));
    // 3. the source goes before the copy is queued (the processor cannot have written a new file at its path yet);
    //    a crash now leaves the job staged only, which the retry links (finishStaged)
    try {
      await unlink(source.path);
    } catch (err) {
      if (!isMissing(err)) throw err;
      await unlink(staging).catch(ignoreMissing); // moved since it was read: look again
      return this.requeue(id, from, key);
    }
    // 4. linked into queue/ (fails if one is there)
    return this.finishStaged(id, key, staging);
  }

  /**
   * No copy in any state: a staged copy carrying the key (a crash after its source was removed) is linked into
   * queue/ and the job is requeued; otherwise it vanished.
   */
  private async finishStaged(id: string, key: string, staging: string): Promise<RequeueOutcome> {
    const staged = await readFile(staging, 'utf8').then(
      (text) => keyOf(JSON.parse(text) as Record<string, unknown>),
      () => undefined,
    );
    if (staged !== key) return 'vanished';
    try {
      await link(staging, this.path('queue', id));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      await unlink(staging).catch(ignoreMissing);
      const queued = await this.read('queue', id).catch(() => undefined);
      return queued && keyOf(queued.payload) === key ? 'already' : 'moved';
    }
    await syncDir(join(this.jobs, 'queue'));
    await unlink(staging).catch(ignoreMissing);
    return 'requeued';
  }

  requeueMany(jobs: RequeueRequest[], onGroup?: (outcomes: RequeueOutcome[]) => void): Promise<RequeueOutcome[]> {
    return requeueSpoolBatch(this, jobs, onGroup);
  }
}

const ignoreMissing = (err: unknown): void => {
  if (!isMissing(err)) throw err;
};

function keyOf(payload: Record<string, unknown>): string | undefined {
  const replay = payload.replay as { key?: unknown } | undefined;
  return replay && typeof replay.key === 'string' ? replay.key : undefined;
}
