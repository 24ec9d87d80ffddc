import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { JobRecord, JobSource, JobState, RequeueOutcome, RequeueRequest } from '../types.js';
import { invalidJob, JOB_STATES } from './errors.js';
import { fsyncDir as syncDir } from '../../sqlite/forensics.js';
import { requeueSpoolBatch } from './spool-batch.js';
import { carriesKey, chainName, chainsOf, legacyName, newNonce, type SpoolHook } from './spool-staging.js';

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

interface JobFile {
  state: JobState;
  path: string;
  since: number;
  /** the file's inode when it was read */
  ino: number;
  payload: Record<string, unknown>;
}

/** `again`: the spool changed under this look (another attempt, the processor): look again */
type Step = RequeueOutcome | 'again';

/** looks in a row before a requeue gives up (each `again` means someone else moved the job on meanwhile) */
const ROUNDS = 8;

/**
 * The seed's spool: `<root>/jobs/{queue,processing,failed,completed}/<id>.json`. A requeue is a chain of the attempt's
 * own names in `jobs/.replay/` (spool-staging.ts): the keyed copy is staged (fdatasynced, its name fsynced), the source
 * is taken out of its state by a rename into the staging directory (one attempt can), and the staged copy is renamed
 * to `queue/<id>.json` (once: the rename consumes it). Two live attempts of one batch and a crash between any two
 * steps leave the job queued once: the key is looked for in every state first (`already`), then a chain whose source
 * was taken is finished by whoever finds it (its attempt died or stalls), a source taken after the keyed copy had
 * come back with the key goes back, and a staged copy whose source was never taken is left out. `requeueMany` does
 * the same for a group of jobs at once (spool-batch.ts): one fdatasync round and one fsync per directory a group.
 */
export class SpoolJobSource implements JobSource {
  private readonly jobs: string;
  /** tests only: called at each step of a requeue (spool-staging.ts) */
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

  /** The job's file in `state`, parsed (with its mtime and inode); undefined when there is none. */
  private async read(state: JobState, id: string): Promise<JobFile | undefined> {
    const path = this.path(state, id);
    let text: string;
    let since: number;
    let ino: number;
    try {
      const fh = await open(path, 'r');
      try {
        const s = await fh.stat();
        since = s.mtimeMs;
        ino = s.ino;
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
      throw invalidJob(id, path, `not JSON (${(err as Error).message})`);
    }
    if (!payload || typeof payload !== 'object' || Array.isArray(payload))
      throw invalidJob(id, path, 'not a JSON object');
    return { state, path, since, ino, payload: payload as Record<string, unknown> };
  }

  async get(id: string): Promise<(JobRecord & { payload: Record<string, unknown> }) | undefined> {
    for (const state of JOB_STATES) {
      const f = await this.read(state, id);
      if (f) return { id, state, since: f.since, replayKey: keyOf(f.payload), payload: f.payload };
    }
    return undefined;
  }

  async requeue(id: string, from: JobState, key: string): Promise<RequeueOutcome> {
    for (let round = 0; round < ROUNDS; round++) {
      const outcome = await this.requeueStep(id, from, key, round);
      if (outcome !== 'again') return outcome;
    }
    throw new Error(`job ${id}: the spool changed under ${ROUNDS} requeues of it in a row`);
  }

  private async requeueStep(id: string, from: JobState, key: string, round: number): Promise<Step> {
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
        // older code's crash between its link and the source's removal left the source behind: the job exists once
        const left =
          copies.get(from) ?? (state === from ? undefined : await this.read(from, id).catch(() => undefined));
        if (left && keyOf(left.payload) !== key) await unlink(left.path).catch(ignoreMissing);
        await this.sweep(id, key);
        return 'already';
      }
      copies.set(state, f);
    }
    // 2. a chain whose source was taken: finished here (its attempt died or is slow: the rename of the copy into
    //    queue/ happens once, whoever does it)
    const staging = await this.stagingDir();
    let queuedBefore = false;
    for (const [nonce, parts] of chainsOf(await readdir(staging), id, key)) {
      if (!parts.has('src')) continue; // a copy whose attempt did not take the source: never queued
      const src = join(staging, chainName(id, key, nonce, 'src'));
      const taken = await readTaken(src, -1, key);
      if (taken === 'gone') return 'again';
      if (taken === 'keyed') {
        // taken after the keyed copy had been worked and had come back to the source's path: it goes back
        await rename(src, this.path(from, id)).catch(ignoreMissing);
        return 'again';
      }
      if (parts.has('tmp')) return this.queueStaged(id, from, key, nonce);
      queuedBefore = true; // its copy was queued (the rename consumed it) since the states were looked at
    }
    // looked at again, the key is found (and this leftover removed); a queued copy someone removed since is not
    // requeued again
    if (queuedBefore) return round === 0 ? 'again' : 'already';
    // 3. nowhere: older code's staged copy carrying the key (its source removed) is queued, else the job vanished
    if (copies.size === 0) return this.finishLegacy(id, key, staging);
    const source = copies.get(from);
    if (!source) return 'moved';
    if (from !== 'queue' && copies.has('queue')) return 'moved';
    // 4. the keyed copy staged beside the state directories (fdatasynced, and its name: a power loss after the source
    //    is taken must not leave an empty job or none); older code's staging name beside a source is no copy
    await unlink(join(staging, legacyName(id))).catch(ignoreMissing);
    const nonce = newNonce();
    const tmp = join(staging, chainName(id, key, nonce, 'tmp'));
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(`${JSON.stringify({ ...source.payload, replay: { key } })}\n`);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await syncDir(staging);
    await this.hook?.('staged', [id]);
    // 5. the source taken out of its state (one attempt can; the processor cannot have written a new file at its
    //    path while the job is nowhere else)
    const src = join(staging, chainName(id, key, nonce, 'src'));
    if (!(await takeSource(source.path, source.ino, src))) {
      await unlink(tmp).catch(ignoreMissing); // taken or moved since it was read: look again
      return 'again';
    }
    // a file that came to the source's path since it was read and carries the key (requeued and worked meanwhile)
    // goes back; the copy is decided by the taken file's content, as whoever finds the chain decides it
    const taken = await readTaken(src, source.ino, key);
    if (taken === 'gone') return 'again'; // the chain was finished by someone who found it
    if (taken === 'keyed') {
      await rename(src, source.path).catch(ignoreMissing);
      await unlink(tmp).catch(ignoreMissing);
      return 'again';
    }
    await this.hook?.('taken', [id]);
    // 6. queued
    return this.queueStaged(id, from, key, nonce);
  }

  /** The chain's copy renamed into queue/ (consumed: once), durable; then its taken source removed. */
  private async queueStaged(id: string, from: JobState, key: string, nonce: string): Promise<Step> {
    const staging = await this.stagingDir();
    try {
      await rename(join(staging, chainName(id, key, nonce, 'tmp')), this.path('queue', id));
    } catch (err) {
      if (!isMissing(err)) throw err;
      return 'again'; // queued by someone else meanwhile: the key is found now
    }
    const dirs = new Set([dirname(this.path('queue', id)), dirname(this.path(from, id)), staging]);
    await Promise.all([...dirs].map(syncDir));
    await this.hook?.('queued', [id]);
    await unlink(join(staging, chainName(id, key, nonce, 'src'))).catch(ignoreMissing);
    await this.sweep(id, key); // copies of attempts that did not take the source (one that died, one still going)
    return 'requeued';
  }

  /** The job in no state: older code's staged copy carrying the key (its source removed) is queued; else vanished. */
  private async finishLegacy(id: string, key: string, staging: string): Promise<Step> {
    const legacy = join(staging, legacyName(id));
    const text = await readFile(legacy, 'utf8').catch(() => undefined);
    if (text === undefined || !carriesKey(text, key)) return 'vanished';
    try {
      await rename(legacy, this.path('queue', id));
    } catch (err) {
      if (!isMissing(err)) throw err;
      return 'again';
    }
    await Promise.all([syncDir(join(this.jobs, 'queue')), syncDir(staging)]);
    return 'requeued';
  }

  /**
   * The job carries the key in a state: what attempts left staged for it is removed (copies never queued, taken
   * sources whose copy was queued, older code's staging name). An attempt still going finds its names gone or the
   * source taken, and looks again.
   */
  private async sweep(id: string, key: string): Promise<void> {
    const staging = await this.stagingDir();
    const names: string[] = [legacyName(id)];
    for (const [nonce, parts] of chainsOf(await readdir(staging), id, key))
      for (const part of parts) names.push(chainName(id, key, nonce, part));
    for (const name of names) {
      const path = join(staging, name);
      // a taken source carrying the key is on its way back to its state: not ours to remove
      if (name.endsWith('.src') && carriesKey(await readFile(path, 'utf8').catch(() => ''), key)) continue;
      await unlink(path).catch(ignoreMissing);
    }
  }

  requeueMany(jobs: RequeueRequest[], onGroup?: (outcomes: RequeueOutcome[]) => void): Promise<RequeueOutcome[]> {
    return requeueSpoolBatch(this, jobs, onGroup);
  }
}

/**
 * Renames the source into the chain (false when it is gone): not when another file is at its path now (a keyed copy
 * may be being worked there; the check after the rename decides, this one only keeps the processor's files alone).
 */
async function takeSource(path: string, ino: number, src: string): Promise<boolean> {
  try {
    if ((await stat(path)).ino !== ino) return false;
    await rename(path, src);
    return true;
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}

/** A taken source: the file that was read (same inode), another one carrying the key or not, or gone already. */
async function readTaken(src: string, ino: number, key: string): Promise<'read' | 'keyed' | 'other' | 'gone'> {
  try {
    if ((await stat(src)).ino === ino) return 'read';
    return carriesKey(await readFile(src, 'utf8'), key) ? 'keyed' : 'other';
  } catch (err) {
    if (isMissing(err)) return 'gone';
    throw err;
  }
}

const ignoreMissing = (err: unknown): void => {
  if (!isMissing(err)) throw err;
};

function keyOf(payload: Record<string, unknown>): string | undefined {
  const replay = payload.replay as { key?: unknown } | undefined;
  return replay && typeof replay.key === 'string' ? replay.key : undefined;
}
