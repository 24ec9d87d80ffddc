import type { DiffStats, DriftClass } from '../stores/diff.js';
import type { ObjectMeta } from '../stores/types.js';

/** What every dual-write activity is called with: the target, and the run whose work files it reads and writes. */
export interface DualWriteRef {
  environment: string;
  target: string;
  /** the run's work files live under <workDir>/<runKey>/ (or under this key in the Postgres work store) */
  runKey: string;
}

export type Side = 'a' | 'b';

/**
 * A work file: where it is and the digest it had when written. `path` is a local path, or
 * `postgres:<table>/<runKey>/<name>` in the Postgres work store; `host` is the worker host that wrote a local file.
 */
export interface FileRef {
  path: string;
  sha256: string;
  host?: string;
}

export interface DriftReport extends FileRef {
  counts: Record<DriftClass, number>;
  total: number;
  stats: DiffStats;
  durationMs: number;
}

export interface RepairAction {
  objectId: string;
  version: number;
  class: DriftClass;
  action: 'copy' | 'delete';
  from: Side;
  to: Side;
  /** sha256 the copied content must have (copy) */
  sha256?: string;
  /** the repair overwrites a newer copy with an older one */
  olderOverwrite: boolean;
}

export interface RepairPlan extends FileRef {
  total: number;
  byClassAndAction: Record<string, number>;
  toA: number;
  toB: number;
  olderOverwrites: number;
  severity: 'none' | 'warning' | 'critical';
  sample: RepairAction[];
}

export interface SnapshotRef extends FileRef {
  entries: number;
  bytes: number;
}

/** One line of a snapshot manifest: an object of the side the repair writes, as it was before the repair. */
export interface SnapshotEntry {
  side: Side;
  objectId: string;
  version: number;
  existed: boolean;
  meta: ObjectMeta | null;
}
