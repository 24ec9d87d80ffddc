import { mkdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { BlobDir, BlobMissingError } from './blob-dir.js';
import { assertContent, rowFingerprint } from './fingerprint.js';
import { openSqlite, PREPARE_COMMAND, SqliteKeyspace, SqliteKeyspaceReads } from './sqlite-keyspace.js';
import { SqliteTracking } from './sqlite-tracking.js';
import { type ObjectKey, type ObjectStoreAdapter, StoreConfigError, type StoredObject } from './types.js';
import type { ChangeTracking } from './types.js';

export interface ObjectStoreConfig {
  /** directory holding `blobs/` and `index.sqlite` */
  root: string;
  /** open for reading only: nothing is created or migrated, what is missing is refused naming the fix */
  readOnly?: boolean;
}

const INDEX_COLUMNS = {
  table: 'objects',
  objectId: 'object_id',
  version: 'version',
  sha256: 'sha256',
  size: 'size',
  createdAt: 'created_at',
  updatedAt: 'updated_at',
  fingerprint: 'fp',
};
const INVALIDATION_TRIGGER = 'objects_fp_invalidate';
const COVERING_INDEX = 'objects_key_fp';

/**
 * A content-addressed object store (the seed's "StorageEngine"): each distinct content is one immutable blob
 * at `<root>/blobs/<sha[0:2]>/<sha>`, written atomically (temporary file in the same directory, fsync, digest
 * check, rename, directory fsync), and the objects are rows of a SQLite index `<root>/index.sqlite` naming
 * their blob by sha256 and carrying their fingerprint (rowFingerprint(), written with the row), so a segment
 * checksum is a sum over the index.
 *
 * Writes and deletes of one instance are serialised, so a blob is never collected while a put that shares it
 * is in flight. Other processes must not write the same root concurrently.
 */
export class ObjectStore extends SqliteKeyspaceReads implements ObjectStoreAdapter {
  private readonly db: Database.Database;
  private readonly blobs: BlobDir;
  private queue: Promise<unknown> = Promise.resolve();
  protected readonly keys: SqliteKeyspace;
  /** change tracking of the index (changes table and triggers), installed by `runbook dual-write track` */
  readonly tracking: ChangeTracking;

  constructor(private readonly config: ObjectStoreConfig) {
    super();
    this.blobs = new BlobDir(join(config.root, 'blobs'));
    const index = join(config.root, 'index.sqlite');
    if (config.readOnly) {
      this.db = openSqlite(index, true, `object store ${config.root}`);
    } else {
      mkdirSync(this.blobs.dir, { recursive: true });
      this.db = openSqlite(index, false, `object store ${config.root}`);
      this.db.pragma('synchronous = FULL');
      this.db.exec(
        `CREATE TABLE IF NOT EXISTS objects (object_id TEXT NOT NULL, version INTEGER NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, fp INTEGER, PRIMARY KEY (object_id, version)) WITHOUT ROWID;
       CREATE INDEX IF NOT EXISTS objects_sha256 ON objects (sha256);`,
      );
    }
    this.keys = new SqliteKeyspace(this.db, INDEX_COLUMNS);
    this.tracking = new SqliteTracking(this.db, { table: 'objects', objectId: 'object_id', version: 'version' });
    if (config.readOnly) {
      this.checkPrepared();
      return;
    }
    this.migrate();
    // the index is ours, but a hand edit (or an older tool) must not leave a stale fingerprint behind
    this.keys.createInvalidationTrigger(INVALIDATION_TRIGGER);
    this.keys.createCoveringIndex(COVERING_INDEX);
  }

  /** Indexes written before fingerprints were stored get the column, filled once. */
  private migrate(): void {
    if (this.indexColumns().includes('fp')) return;
    this.db.transaction(() => {
      this.db.exec('ALTER TABLE objects ADD COLUMN fp INTEGER');
      this.db.exec(`UPDATE objects SET fp = ${this.keys.computedFingerprintSql}`);
    })();
  }

  private indexColumns(): string[] {
    return this.db.prepare(`SELECT name FROM pragma_table_info('objects')`).pluck().all() as string[];
  }

  /** Read-only: what a writable open would create or migrate must already be there. */
  private checkPrepared(): void {
    const has = (type: string, name: string) =>
      this.db.prepare(`SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?`).get(type, name) !== undefined;
    const missing = !has('table', 'objects')
      ? 'has no objects table'
      : !this.indexColumns().includes('fp')
        ? 'has no fingerprint column (written by an older version)'
        : !has('trigger', INVALIDATION_TRIGGER)
          ? `lacks its trigger ${INVALIDATION_TRIGGER}`
          : !has('index', COVERING_INDEX)
            ? `lacks its index ${COVERING_INDEX}`
            : undefined;
    if (missing) {
      this.db.close();
      throw new StoreConfigError(
        `object store ${this.config.root}: index.sqlite ${missing}; detection does not change a store: run ${PREPARE_COMMAND} once`,
      );
    }
  }

  /** A store at `root`, creating its directories (unless read-only). */
  static async open(root: string, options: { readOnly?: boolean } = {}): Promise<ObjectStore> {
    if (!options.readOnly) await mkdir(join(root, 'blobs'), { recursive: true });
    return new ObjectStore({ root, readOnly: options.readOnly });
  }

  describe(): string {
    return `object store ${this.config.root}`;
  }

  /** where the blob of this digest lives (the digest is checked: it becomes a path) */
  blobPath(sha256: string): string {
    return this.blobs.path(sha256);
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    // blobs are written before the index refuses the write: refuse first
    if (this.config.readOnly) return Promise.reject(new Error(`${this.describe()} is open read-only`));
    const result = this.queue.then(work);
    this.queue = result.catch(() => {});
    return result;
  }

  /** The objects that exist, in the order asked; throws when a blob is missing or does not match its digest. */
  async get(keys: ObjectKey[]): Promise<StoredObject[]> {
    const out: StoredObject[] = [];
    for (const k of keys) {
      const [meta] = this.keys.getMeta([k]);
      if (!meta) continue;
      let content: Buffer;
      try {
        content = await this.blobs.read(meta.sha256, meta.size, `${k.objectId}@${k.version}`);
      } catch (error) {
        if (!(error instanceof BlobMissingError)) throw error;
        // deleted (and its blob collected) while we read: absent, unless the row is still there
        if (this.keys.getMeta([k]).length === 0) continue;
        throw error;
      }
      out.push({ ...meta, content });
    }
    return out;
  }

  /** Blobs first (atomically, verified), then the index rows in one transaction; overwritten blobs are collected. */
  async put(objects: StoredObject[]): Promise<void> {
    objects.forEach(assertContent);
    if (objects.length === 0) return;
    await this.exclusive(async () => {
      const written = new Set<string>();
      for (const o of objects) {
        if (written.has(o.sha256)) continue;
        await this.blobs.write(o.sha256, o.content);
        written.add(o.sha256);
      }
      const previous = this.db.prepare('SELECT sha256 FROM objects WHERE object_id = ? AND version = ?').pluck();
      const upsert = this.db.prepare(
        `INSERT INTO objects (object_id, version, sha256, size, created_at, updated_at, fp) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (object_id, version) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size, created_at = excluded.created_at, updated_at = excluded.updated_at, fp = excluded.fp`,
      );
      const replaced = new Set<string>();
      this.db.transaction(() => {
        for (const o of objects) {
          const old = previous.get(o.objectId, o.version) as string | undefined;
          if (old !== undefined && old !== o.sha256) replaced.add(old);
          upsert.run(o.objectId, o.version, o.sha256, o.size, o.createdAt, o.updatedAt, rowFingerprint(o));
        }
      })();
      await this.collect(replaced);
    });
  }

  /** Removes the index rows, then the blobs no remaining row references. */
  async delete(keys: ObjectKey[]): Promise<void> {
    if (keys.length === 0) return;
    await this.exclusive(async () => {
      const find = this.db.prepare('SELECT sha256 FROM objects WHERE object_id = ? AND version = ?').pluck();
      const remove = this.db.prepare('DELETE FROM objects WHERE object_id = ? AND version = ?');
      const released = new Set<string>();
      this.db.transaction(() => {
        for (const k of keys) {
          const sha = find.get(k.objectId, k.version) as string | undefined;
          if (sha === undefined) continue;
          remove.run(k.objectId, k.version);
          released.add(sha);
        }
      })();
      await this.collect(released);
    });
  }

  async close(): Promise<void> {
    await this.queue;
    this.db.close();
  }

  /** Unlinks the blobs of these digests that no index row references any more. */
  private async collect(shas: Iterable<string>): Promise<void> {
    const referenced = this.db.prepare('SELECT 1 FROM objects WHERE sha256 = ? LIMIT 1').pluck();
    await this.blobs.collect(
      shas,
      (candidates) => new Set(candidates.filter((sha) => referenced.get(sha) !== undefined)),
    );
  }
}
