import { mkdirSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { replayTag, spoolName } from '../activities/migration/jobs/spool-names.js';
import type { JobState } from '../activities/migration/types.js';

export interface SpoolSeed {
  /** the state began at this time (file mtime; the job's timestamp) */
  at?: Date;
  /** merged into each job's JSON */
  payload?: Record<string, unknown>;
  /** the file is not JSON (the processor fails it) */
  notJson?: boolean;
  /** a replay with this key requeued the job (its file is `<id>~<tag>.json`) */
  replayKey?: string;
}

/**
 * Writes job files `<root>/jobs/<state>/<id>.json` (`<id>~<tag>.json` with a replay key) as the demo job processor
 * reads them (failed ones with a lastError). Each is written beside and renamed in, so a running processor never
 * reads half a file.
 */
export function writeSpoolJobs(root: string, ids: string[], state: JobState, s: SpoolSeed = {}): void {
  const at = s.at ?? new Date();
  const dir = join(root, 'jobs', state);
  mkdirSync(dir, { recursive: true });
  for (const id of ids) {
    const job = {
      id,
      timestamp: at.toISOString(),
      ...s.payload,
      ...(state === 'failed' && { lastError: 'backend unavailable (seeded)' }),
    };
    const tmp = join(dir, `.${id}.json.tmp`);
    writeFileSync(tmp, s.notJson ? `not json {${id}\n` : `${JSON.stringify(job)}\n`);
    utimesSync(tmp, at, at);
    renameSync(tmp, join(dir, spoolName(id, s.replayKey && replayTag(s.replayKey))));
  }
}
