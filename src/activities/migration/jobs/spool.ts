import { mkdir, open, readdir, rename, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { JobRecord, JobSource, JobState, RequeueOutcome, RequeueRequest } from '../types.js';
import { invalidJob, JOB_STATES } from './errors.js';
import { fsyncDir as syncDir } from '../../sqlite/forensics.js';
import { requeueSpoolBatch, type SpoolHook } from './spool-batch.js';
import { parseSpoolName, replayTag, spoolName } from './spool-names.js';

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

/** a job's file in a state */
interface Entry {
  id: string;
  state: JobState;
  name: string;
  tag?: string;
}

/** `again`: the spool changed under this look (another attempt, the processor): look again */
type Step = RequeueOutcome | 'again';

/** looks in a row before a requeue gives up (each `again` means someone else moved the job on meanwhile) */
const ROUNDS = 8;

/**
 * The seed's spool: `<root>/jobs/{queue,processing,failed,completed}/<name>` (spool-names.ts: `<id>.json`, or
 * `<id>~<tag>.json` once a replay requeued it). A requeue is one rename of the job's file into
 * `queue/<id>~<tag>.json`, the tag standing for the run's key: atomic, so the job is queued once whatever crashes,
 * and it never rewrites the job's bytes. The processor keeps the name in every state, so a job whose tagged name is
 * in any state was requeued by this run (`already`): a retry after a crash, or a second live attempt of the batch,
 * finds it. `requeueMany` does the same for a group of jobs at once (spool-batch.ts), one fsync per directory.
 */
export class SpoolJobSource implements JobSource {
  private readonly jobs: string;
  /** tests only: called after each group's renames, before they are made durable (spool-batch.ts) */
  readonly hook?: SpoolHook;

  constructor(
    readonly root: string,
    options: { hook?: SpoolHook } = {},
  ) {
    this.jobs = join(root, 'jobs');
    this.hook = options.hook;
  }

  describe(): string {
    return `spool ${this.jobs}`;
  }

  private queueMade?: Promise<void>;

  /** queue/, made once */
  ensureQueue(): Promise<void> {
    this.queueMade ??= mkdir(join(this.jobs, 'queue'), { recursive: true }).then(() => undefined);
    return this.queueMade;
  }

  /** `jobs/<state>/<name>` */
  file(state: JobState, name: string): string {
    return join(this.jobs, state, name);
  }

  private async entries(state: JobState): Promise<Entry[]> {
    let names: string[];
    try {
      names = await readdir(join(this.jobs, state));
    } catch (err) {
      if (isMissing(err)) return [];
      throw err;
    }
    const out: Entry[] = [];
    for (const name of names) {
      const job = parseSpoolName(name);
      if (job) out.push({ ...job, state, name });
    }
    return out;
  }

  async list(states: JobState[], page: { afterId?: string; limit: number }): Promise<JobRecord[]> {
    const all: Entry[] = [];
    for (const state of states) all.push(...(await this.entries(state)));
    const after = page.afterId;
    const rows = all
      .filter((r) => after === undefined || r.id > after)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : JOB_STATES.indexOf(a.state) - JOB_STATES.indexOf(b.state)))
      .slice(0, page.limit);
    const records: JobRecord[] = [];
    for (const r of rows) {
      try {
        const since = (await stat(this.file(r.state, r.name))).mtimeMs;
        records.push({ id: r.id, state: r.state, since, name: r.name, ...(r.tag ? { replayTag: r.tag } : {}) });
      } catch (err) {
        if (!isMissing(err)) throw err; // moved since the directory was read: it shows up in its new state later
      }
    }
    return records;
  }

  /** the tagged names of the directories' last listing (made when needed), so that a lookup is not a listing */
  private index?: Map<string, Entry[]>;

  /** Forgets the last listing: the next lookup lists the directories again. */
  relist(): void {
    this.index = undefined;
  }

  /**
   * The job's files, in the processor's order of states (queue → processing → failed/completed). `<id>.json` is
   * looked for by name; tagged names in the last listing.
   */
  private async find(id: string): Promise<Entry[]> {
    if (!this.index) {
      const index = new Map<string, Entry[]>();
      for (const state of JOB_STATES)
        for (const e of await this.entries(state)) if (e.tag) index.set(e.id, [...(index.get(e.id) ?? []), e]);
      this.index = index;
    }
    const plain = spoolName(id);
    const found: Entry[] = [];
    for (const state of JOB_STATES) {
      if (await exists(this.file(state, plain))) found.push({ id, state, name: plain });
      for (const e of this.index.get(id) ?? []) if (e.state === state) found.push(e);
    }
    return found;
  }

  /** The job's file parsed; undefined when it is gone. */
  private async read(e: Entry): Promise<(JobRecord & { payload: Record<string, unknown> }) | undefined> {
    const path = this.file(e.state, e.name);
    let text: string;
    let since: number;
    try {
      const fh = await open(path, 'r');
      try {
        since = (await fh.stat()).mtimeMs;
        text = await fh.readFile('utf8');
      } finally {
        await fh.close();
      }
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    let payload: unknown;
    try {
      payload = JSON.parse(text);
    } catch (err) {
      throw invalidJob(e.id, path, `not JSON (${(err as Error).message})`);
    }
    if (!payload || typeof payload !== 'object' || Array.isArray(payload))
      throw invalidJob(e.id, path, 'not a JSON object');
    return {
      id: e.id,
      state: e.state,
      since,
      name: e.name,
      ...(e.tag ? { replayTag: e.tag } : {}),
      payload: payload as Record<string, unknown>,
    };
  }

  async get(id: string): Promise<(JobRecord & { payload: Record<string, unknown> }) | undefined> {
    for (const fresh of [false, true]) {
      if (fresh) this.relist(); // what the last listing says is gone: look again
      const found = await this.find(id);
      for (const e of found) {
        const job = await this.read(e);
        if (job) return job;
      }
      if (found.length === 0 && fresh) return undefined;
    }
    return undefined;
  }

  async requeue(id: string, from: JobState, key: string, name?: string): Promise<RequeueOutcome> {
    this.relist();
    return this.requeueListed(id, from, key, name);
  }

  /**
   * `requeue` on the last listing, listed again after a look the spool changed under: a group's jobs that take the
   * one-job path share one listing (spool-batch.ts), not one each.
   */
  async requeueListed(id: string, from: JobState, key: string, name?: string): Promise<RequeueOutcome> {
    for (let round = 0; round < ROUNDS; round++) {
      if (round > 0) this.relist();
      const outcome = await this.requeueStep(id, from, key, name);
      if (outcome !== 'again') return outcome;
    }
    throw new Error(`job ${id}: the spool changed under ${ROUNDS} requeues of it in a row`);
  }

  private async requeueStep(id: string, from: JobState, key: string, planned: string | undefined): Promise<Step> {
    const tagged = spoolName(id, replayTag(key));
    // 1. the tagged name in any state (in the processor's order, so a file moving on while we look is still seen)
    for (const state of JOB_STATES) if (await exists(this.file(state, tagged))) return 'already';
    // 2. where the job is now
    const found = await this.find(id);
    if (found.length === 0) return 'vanished';
    if (from !== 'queue' && found.some((e) => e.state === 'queue')) return 'moved';
    const sources = found.filter((e) => e.state === from);
    if (sources.length === 0) return 'moved';
    // the planned file when it is there; otherwise the first by name, so two attempts take the same one
    const source = sources.find((e) => e.name === planned) ?? sources.sort((a, b) => (a.name < b.name ? -1 : 1))[0]!;
    // 3. one rename: queued with the tag
    await this.ensureQueue();
    try {
      await rename(this.file(from, source.name), this.file('queue', tagged));
    } catch (err) {
      if (!isMissing(err)) throw err;
      return 'again'; // taken by another attempt or moved by the processor since it was looked at
    }
    await Promise.all(
      [...new Set([dirname(this.file('queue', tagged)), dirname(this.file(from, source.name))])].map(syncDir),
    );
    return 'requeued';
  }

  requeueMany(jobs: RequeueRequest[], onGroup?: (outcomes: RequeueOutcome[]) => void): Promise<RequeueOutcome[]> {
    return requeueSpoolBatch(this, jobs, onGroup);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}
