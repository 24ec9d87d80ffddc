/**
 * A dual-write pair is two stores holding the same logical objects, identified by (objectId, version).
 * Keys are ordered by objectId (bytewise, "C" collation) then version. Timestamps are epoch milliseconds.
 */
export interface ObjectKey {
  objectId: string;
  version: number;
}

export interface ObjectMeta extends ObjectKey {
  size: number;
  /** hex sha256 of the content */
  sha256: string;
  createdAt: number;
  updatedAt: number;
}

export interface StoredObject extends ObjectMeta {
  content: Buffer;
}

/** [from, to): `from` inclusive, `to` exclusive; open ends when omitted. */
export interface KeyRange {
  from?: ObjectKey;
  to?: ObjectKey;
}

/**
 * Count and an order-independent aggregate of the rows' fingerprints (see rowFingerprint), computed by the
 * store itself so that comparing two segments moves only three numbers.
 */
export interface SegmentSummary {
  count: number;
  h1: string;
  h2: string;
}

/**
 * The fingerprints of a range's rows in key order, in decimal, joined by commas ('' for an empty range): equal
 * lists are equal rows, so a segment compares as one string and only the lists that differ are split.
 */
export type FingerprintList = string;

/** Rows of `range` whose fingerprint is one of `fingerprints` (decimal, as in a FingerprintList). */
export interface FingerprintProbe {
  range: KeyRange;
  fingerprints: string[];
}

export interface ObjectStoreAdapter {
  describe(): string;
  /** metadata in key order, page by page, never the whole range in memory */
  scan(range: KeyRange, pageSize: number): AsyncIterable<ObjectMeta[]>;
  /** metadata (no content) of the keys that exist, in the order asked */
  getMeta(keys: ObjectKey[]): Promise<ObjectMeta[]>;
  /**
   * Segment comparison, present when the store computes row fingerprints itself (all three adapters do):
   * `summarize` one range, `summarizeRanges` many consecutive ranges in one round trip, `fingerprintLists` the
   * fingerprints of each range's rows, `metaByFingerprint` the metadata of the rows a list comparison left
   * unmatched, `stepKeys` the keys every `step` rows from the start of a range (positions step, 2·step, …, at
   * most `max` of them) to cut it into segments.
   */
  summarize?(range: KeyRange): Promise<SegmentSummary>;
  summarizeRanges?(ranges: KeyRange[]): Promise<SegmentSummary[]>;
  fingerprintLists?(ranges: KeyRange[]): Promise<FingerprintList[]>;
  metaByFingerprint?(probes: FingerprintProbe[]): Promise<ObjectMeta[]>;
  stepKeys?(range: KeyRange, step: number, max: number): Promise<ObjectKey[]>;
  /** the store answers in this process (SQLite): many small calls are cheap, so it cuts ranges into segments */
  readonly inProcess?: boolean;
  /** where the fingerprints come from: a maintained column (cheap to sum) or computed per row */
  fingerprintSource?(): 'stored' | 'computed';
  /** adds the configured fingerprint column, the trigger that keeps it, and its index; idempotent */
  installFingerprint?(): Promise<void> | void;
  /** store-maintained change tracking (a trigger marking every written key), when the store can keep it */
  readonly tracking?: ChangeTracking;
  get(keys: ObjectKey[]): Promise<StoredObject[]>;
  /** idempotent upsert; the content must match its sha256 and size */
  put(objects: StoredObject[]): Promise<void>;
  /** idempotent */
  delete(keys: ObjectKey[]): Promise<void>;
  close(): Promise<void>;
}

/** Whether a store's change tracking can be trusted now, and which installation it is. */
export interface TrackingStatus {
  /** installed and intact: every insert, update and delete of the store's table marks its key */
  intact: boolean;
  /** what is wrong when not intact (not installed, a trigger missing, disabled or changed, the marks emptied) */
  why?: string;
  /**
   * the installation: changes when tracking is installed again or its triggers are recreated; marks taken
   * under another identity cannot be continued from
   */
  identity?: string;
}

/** The keys a store marked changed after a mark, read in one consistent snapshot. */
export interface ChangeSet {
  status: TrackingStatus;
  /** where the next read continues from (opaque to the caller: a Postgres snapshot, a SQLite sequence number) */
  mark: string;
  /** keys changed after `since` (empty when there was no `since`); undefined when `overflow` says why not */
  keys?: ObjectKey[];
  /**
   * the keys cannot be listed: more than `limit`, the table was truncated since, or marks after `since` were
   * pruned (a mark older than the last prune)
   */
  overflow?: string;
}

/**
 * Store-maintained change tracking: a table of changed keys kept by triggers on the store's table (whoever
 * writes), so a re-check reads the keys changed since its last mark instead of every row. Installing and removing
 * it are an operator's explicit actions (`runbook dual-write track`); reading never changes anything.
 */
export interface ChangeTracking {
  /** what is installed where (the changes table and the triggers) */
  describe(): string;
  status(): Promise<TrackingStatus>;
  /** installs what is missing, in one transaction; a no-op (same identity) when tracking is intact */
  install(): Promise<TrackingStatus>;
  /** drops the triggers, their function and the changes table; idempotent */
  remove(): Promise<void>;
  /** the keys marked after `since` (at most `limit`), the status and a new mark, in one snapshot */
  changes(since: string | undefined, limit: number): Promise<ChangeSet>;
  /** deletes the marks a reader continuing from `upTo` no longer needs; how many */
  prune(upTo: string): Promise<number>;
}

/** The store is configured in a way it cannot work with (e.g. a fingerprint column nothing maintains): not retryable. */
export class StoreConfigError extends Error {
  override name = 'StoreConfigError';
}
