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

export interface ObjectStoreAdapter {
  describe(): string;
  /** metadata in key order, page by page, never the whole range in memory */
  scan(range: KeyRange, pageSize: number): AsyncIterable<ObjectMeta[]>;
  /** present when the store can checksum a key range itself */
  summarize?(range: KeyRange): Promise<SegmentSummary>;
  /** up to `parts - 1` keys splitting the range into parts of roughly equal row counts */
  splitPoints?(range: KeyRange, parts: number): Promise<ObjectKey[]>;
  get(keys: ObjectKey[]): Promise<StoredObject[]>;
  /** idempotent upsert; the content must match its sha256 and size */
  put(objects: StoredObject[]): Promise<void>;
  /** idempotent */
  delete(keys: ObjectKey[]): Promise<void>;
  close(): Promise<void>;
}
