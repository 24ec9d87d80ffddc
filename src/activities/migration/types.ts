/**
 * The two adapters every backend-migration runbook is written on (contract; implementations beside this file):
 * a configuration store (where the backend settings live) and a job source (where jobs wait, run, fail, finish).
 */

/** key → value; null: the key is not set (writing null removes it) */
export type ConfigValues = Record<string, string | null>;

export interface ConfigStore {
  /** current values of the named keys (null when absent) */
  read(keys: string[]): Promise<ConfigValues>;
  /**
   * Sets (null: removes) the given keys, leaving everything else byte-identical (comments, order, other keys).
   * Idempotent: writes nothing when every key already has its value. Atomic for files (write + rename).
   */
  write(values: ConfigValues): Promise<{ changed: boolean }>;
  /** the store's whole content, for last-known-good snapshots (a file's bytes; a ConfigMap's data as JSON) */
  snapshot(): Promise<Buffer>;
  /** puts a snapshot back exactly */
  restoreSnapshot(content: Buffer): Promise<{ changed: boolean }>;
  /** for plans and evidence: "ini /srv/config/production_config.ini" */
  describe(): string;
}

export type JobState = 'queue' | 'processing' | 'failed' | 'completed';

export interface JobRecord {
  id: string;
  state: JobState;
  /** ms since epoch: when the job entered its state (file mtime; updated_at) */
  since: number;
  attempts?: number;
  /** spool-names.ts `replayTag` of the replay key the job carries, when a replay requeued it */
  replayTag?: string;
  /** the job's file name, for a source that has files (the spool) */
  name?: string;
}

export type RequeueOutcome =
  /** moved to the queue with the key */
  | 'requeued'
  /** the job already carries this key (in any state): requeued before, by this run */
  | 'already'
  /** the job no longer exists */
  | 'vanished'
  /** the job is no longer in the state it was planned from (someone else moved it) */
  | 'moved';

export interface RequeueRequest {
  id: string;
  from: JobState;
  key: string;
  /** the job's file name when it was planned (the spool) */
  name?: string;
}

export interface JobSource {
  /** jobs in the given states, in id order, from after `afterId` (paging: at most `limit`) */
  list(states: JobState[], page: { afterId?: string; limit: number }): Promise<JobRecord[]>;
  /** one job and its payload (parsed JSON; a job that is not JSON is an error naming it) */
  get(id: string): Promise<(JobRecord & { payload: Record<string, unknown> }) | undefined>;
  /**
   * Moves a job from `from` to the queue carrying `key` (idempotency key of this run and job). At most once per
   * key: a job that carries the key in any state is 'already'. Atomic (rename; one UPDATE).
   */
  requeue(id: string, from: JobState, key: string, name?: string): Promise<RequeueOutcome>;
  /**
   * `requeue` of many jobs at once, with the same guarantees per job, the outcomes in the jobs' order. Works in
   * groups: `onGroup` gets each group's outcomes (in order) once that group is final and durable, so a caller can
   * record a cursor after it; a crash inside a group leaves every job of it safe to requeue again.
   */
  requeueMany(jobs: RequeueRequest[], onGroup?: (outcomes: RequeueOutcome[]) => void): Promise<RequeueOutcome[]>;
  describe(): string;
}
