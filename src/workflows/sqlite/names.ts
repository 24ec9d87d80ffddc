import { patched } from '@temporalio/workflow';

// Pure helpers the SQLite runbooks share (usable inside workflows).

/**
 * Run ids are UUIDv7: their start is a timestamp, the same for runs started within the same second or minute, their
 * end is random. Names take the end; runs started before this change keep the start they used (patched).
 */
function runPart(runId: string, length: number): string {
  const id = runId.replace(/[^a-z0-9]/g, '');
  return patched('unique-run-names') ? id.slice(-length) : id.slice(0, length);
}

/** `<prefix>_<UTC time>-<tag><run>`: sorts by time; the run id part keeps two backups in one second apart. */
export function backupNameFor(prefix: string, at: Date, tag: string | undefined, runId: string): string {
  const time = at.toISOString().slice(0, 19).replace('T', '_').replaceAll(':', '-');
  const run = runPart(runId, 6);
  // at most 16 characters: the tag gives way to the run part (before: cut at 16 from the start)
  const suffix = patched('unique-run-names') ? `${(tag ?? '').slice(0, 10)}${run}` : `${tag ?? ''}${run}`.slice(0, 16);
  return `${prefix}_${time}-${suffix}`;
}

/** A run's own name for its files (forensic copy, staged restore): workflow id and a part of the run id. */
export const runTag = (workflowId: string, runId: string) =>
  `${workflowId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80)}-${patched('unique-run-names') ? runId.replace(/[^a-z0-9]/g, '') : runId.slice(0, 8)}`;
