import { createHash, randomBytes } from 'node:crypto';

/**
 * Names in the spool's staging directory `jobs/.replay/` (not a state: the processor never looks there). A requeue
 * of job `<id>` with key K is a chain of one attempt, named by a nonce of its own (two live attempts of one batch
 * never share a name):
 *
 * - `<id>.<kh>.<nonce>.tmp`: the keyed copy, written and fdatasynced before anything else happens;
 * - `<id>.<kh>.<nonce>.src`: the job's source, taken (renamed) out of its state once the copy is durable. Only one
 *   attempt can take it: the chain whose source is taken is the job's one chain for K.
 *
 * The chain ends with `rename(tmp → queue/<id>.json)`, which consumes the copy: whoever does it (the attempt or one
 * that finds the chain of an attempt that died or stalls) queues the job, and the other's rename finds nothing. A
 * `.tmp` without its `.src` is the copy of an attempt that did not take the source: it is never queued. `<kh>` is the
 * key's digest (another run's leftovers are not this run's), `<id>.json` the staging name of older code.
 */
export type ChainPart = 'tmp' | 'src';

export const keyHash = (key: string): string => createHash('sha256').update(key).digest('hex').slice(0, 16);

export const newNonce = (): string => randomBytes(6).toString('hex');

export const chainName = (id: string, key: string, nonce: string, part: ChainPart): string =>
  `${id}.${keyHash(key)}.${nonce}.${part}`;

/** the staging name of older code (one for every attempt) */
export const legacyName = (id: string): string => `${id}.json`;

const CHAIN = /^(.+)\.([0-9a-f]{16})\.([0-9a-f]+)\.(tmp|src)$/;

/** The chains of job `id` with `key` among the staging directory's names: nonce → the parts there. */
export function chainsOf(names: string[], id: string, key: string): Map<string, Set<ChainPart>> {
  const kh = keyHash(key);
  const chains = new Map<string, Set<ChainPart>>();
  for (const name of names) {
    const m = CHAIN.exec(name);
    if (!m || m[1] !== id || m[2] !== kh) continue;
    const parts = chains.get(m[3]!) ?? new Set<ChainPart>();
    parts.add(m[4] as ChainPart);
    chains.set(m[3]!, parts);
  }
  return chains;
}

/** `<id>.<kh>` of every chain, and `<id>.json` of older code, among the names: the jobs with something staged */
export function stagedJobs(names: string[]): Set<string> {
  const staged = new Set<string>();
  for (const name of names) {
    const m = CHAIN.exec(name);
    if (m) staged.add(`${m[1]}.${m[2]}`);
    else if (name.endsWith('.json')) staged.add(name);
  }
  return staged;
}

export const hasStaged = (staged: Set<string>, id: string, key: string): boolean =>
  staged.has(`${id}.${keyHash(key)}`) || staged.has(legacyName(id));

/** Whether a job file's text carries `key` (text that is not a JSON object carries none). */
export function carriesKey(text: string, key: string): boolean {
  try {
    const job = JSON.parse(text) as { replay?: { key?: unknown } } | null;
    return typeof job === 'object' && job !== null && job.replay?.key === key;
  } catch {
    return false;
  }
}

/**
 * The points of a spool requeue, for tests that interleave two attempts or crash one there: after the keyed copies
 * are staged (durable), after the sources are taken, after the copies are queued (durable; the taken sources not yet
 * removed). Called with the ids of the jobs at that point.
 */
export type SpoolStep = 'staged' | 'taken' | 'queued';
export type SpoolHook = (step: SpoolStep, ids: string[]) => void | Promise<void>;
