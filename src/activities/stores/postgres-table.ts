import type {
  ChangeTracking,
  FingerprintList,
  FingerprintProbe,
  KeyRange,
  ObjectKey,
  ObjectMeta,
  ObjectStoreAdapter,
  SegmentSummary,
  StoredObject,
} from './types.js';
import { PostgresReads } from './postgres/reads.js';
import { PostgresSchema } from './postgres/schema.js';
import { PostgresTable, type PostgresTableConfig } from './postgres/table.js';
import { PostgresTracking } from './postgres/tracking.js';
import { PostgresWrites } from './postgres/writes.js';

export { isConnectionError } from './postgres/connection.js';
export type { PostgresTableConfig } from './postgres/table.js';

/**
 * Objects in one Postgres table. Keys are ordered with COLLATE "C" (bytewise); timestamps are timestamptz,
 * exchanged as epoch milliseconds; fingerprints equal rowFingerprint() and come from Postgres: from the
 * `fingerprint` column a trigger keeps (installFingerprint()) when one is configured, else computed per row.
 * Every statement is parameterised and goes through the pool (no client is kept), and statements that fail
 * because the connection died are retried: every operation here is idempotent.
 *
 * With `contentReference` the content column holds `<sha[0:2]>/<sha>` references into a BlobDir (see
 * PostgresWrites). Blob writes and reads take an advisory lock on the table shared, collection exclusive, so
 * instances and workers on the same table never collect a blob under each other; writers that do not take that
 * lock must not delete blobs, and the root must hold this table's blobs only.
 *
 * The pieces (postgres/): table.ts the table as SQL, connection.ts retries, schema.ts DDL and checks, reads.ts
 * and writes.ts the statements; this class ties them to the ObjectStoreAdapter interface.
 */
export class PostgresTableStore implements ObjectStoreAdapter {
  private readonly table: PostgresTable;
  private readonly schema: PostgresSchema;
  private readonly reads: PostgresReads;
  private readonly writes: PostgresWrites;
  private initialized: Promise<void> | undefined;
  /** change tracking (changes table and triggers), installed by `runbook dual-write track` */
  readonly tracking: ChangeTracking;

  constructor(private readonly config: PostgresTableConfig) {
    this.table = new PostgresTable(config);
    this.schema = new PostgresSchema(this.table);
    const ready = () => this.init();
    this.reads = new PostgresReads(this.table, ready);
    this.writes = new PostgresWrites(this.table, ready);
    this.tracking = new PostgresTracking(this.table, ready);
  }

  /** A store whose table exists (created when `create`). */
  static async open(config: PostgresTableConfig): Promise<PostgresTableStore> {
    const store = new PostgresTableStore(config);
    await store.init();
    return store;
  }

  /** Creates the table when `create` is set and reads the id column's collation; idempotent. Every other method calls it first. */
  init(): Promise<void> {
    this.initialized ??= this.schema.prepare().catch((error: unknown) => {
      this.initialized = undefined;
      throw error;
    });
    return this.initialized;
  }

  fingerprintSource(): 'stored' | 'computed' {
    return this.table.fp ? 'stored' : 'computed';
  }

  /**
   * Adds the fingerprint column, the trigger that sets it on every insert and update (whoever writes), fills it
   * for existing rows, makes it NOT NULL and adds a covering index (key, fingerprint) so segment checksums are
   * index-only scans; idempotent, in one transaction. On a large table the fill rewrites every row once: run it
   * (`npx runbook dual-write prepare`) in a quiet hour, not during an incident.
   */
  async installFingerprint(): Promise<void> {
    await this.schema.installFingerprint();
    this.initialized = Promise.resolve();
  }

  describe(): string {
    const where = this.table.blobs ? ` (content under ${this.table.blobs.dir})` : '';
    return `postgres table ${this.config.name ?? this.config.table}${where}`;
  }

  scan(range: KeyRange, pageSize: number): AsyncIterable<ObjectMeta[]> {
    return this.reads.scan(range, pageSize);
  }

  summarize(range: KeyRange): Promise<SegmentSummary> {
    return this.reads.summarize(range);
  }

  summarizeRanges(ranges: KeyRange[]): Promise<SegmentSummary[]> {
    return this.reads.summarizeRanges(ranges);
  }

  fingerprintLists(ranges: KeyRange[]): Promise<FingerprintList[]> {
    return this.reads.fingerprintLists(ranges);
  }

  metaByFingerprint(probes: FingerprintProbe[]): Promise<ObjectMeta[]> {
    return this.reads.metaByFingerprint(probes);
  }

  stepKeys(range: KeyRange, step: number, max: number): Promise<ObjectKey[]> {
    return this.reads.stepKeys(range, step, max);
  }

  getMeta(keys: ObjectKey[]): Promise<ObjectMeta[]> {
    return this.reads.getMeta(keys);
  }

  get(keys: ObjectKey[]): Promise<StoredObject[]> {
    return this.reads.get(keys);
  }

  put(objects: StoredObject[]): Promise<void> {
    return this.writes.put(objects);
  }

  delete(keys: ObjectKey[]): Promise<void> {
    return this.writes.delete(keys);
  }

  /** The pool belongs to the caller, who ends it. */
  async close(): Promise<void> {}
}
