// Pure helpers the SQLite runbooks share (no I/O: usable inside workflows).

/** `<prefix>_<UTC time>-<tag><run>`: sorts by time; the run id part keeps two backups in one second apart. */
export function backupNameFor(prefix: string, at: Date, tag: string | undefined, runId: string): string {
  const time = at.toISOString().slice(0, 19).replace('T', '_').replaceAll(':', '-');
  const suffix = `${tag ?? ''}${runId.replace(/[^a-z0-9]/g, '').slice(0, 6)}`.slice(0, 16);
  return `${prefix}_${time}-${suffix}`;
}

/** A run's forensic copy lives in `<forensicsDir>/<tag>`: the tag names the workflow and its run. */
export const forensicTag = (workflowId: string, runId: string) =>
  `${workflowId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80)}-${runId.slice(0, 8)}`;
