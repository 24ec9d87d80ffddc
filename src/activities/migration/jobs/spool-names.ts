import { createHash } from 'node:crypto';

/**
 * Job file names in the spool: `<id>.json`, and `<id>~<tag>.json` once a replay requeued the job, where `<tag>` is
 * {@link replayTag} of the run's key for it. The processor keeps a file's name as it moves it between states (a
 * rename, as the seed's `mv` does), so the tag goes with the job to processing, failed and completed: a job whose
 * tag is found in any state was requeued by that run. The job's bytes are never rewritten by a replay.
 */

/** 16 hex digits of the SHA-256 of a replay key (`<workflowId>/<first run id>/<job id>`) */
export const replayTag = (key: string): string => createHash('sha256').update(key).digest('hex').slice(0, 16);

export const spoolName = (id: string, tag?: string): string => (tag ? `${id}~${tag}.json` : `${id}.json`);

const TAGGED = /^(.+)~([0-9a-f]{16})\.json$/;

/** The job a file name is of (and its tag), or undefined for a name that is not a job's (dotfiles, not `.json`). */
export function parseSpoolName(name: string): { id: string; tag?: string } | undefined {
  if (name.startsWith('.') || !name.endsWith('.json')) return undefined;
  const m = TAGGED.exec(name);
  return m ? { id: m[1]!, tag: m[2]! } : { id: name.slice(0, -'.json'.length) };
}
