import type pg from 'pg';
import { BlobDir } from '../blob-dir.js';
import { assertContent } from '../fingerprint.js';
import type { ObjectKey, StoredObject } from '../types.js';
import { keyArrays, type PostgresTable } from './table.js';

/** content bytes per INSERT statement (a put of a larger batch is several statements in one transaction) */
const MAX_STATEMENT_BYTES = 16 * 1024 * 1024;

/**
 * The table's writes: idempotent upserts and deletes; with content by reference, blobs first and the rows in the
 * same transaction under the shared blob lock, and blobs no row references any more collected after. Each
 * waits for the store's schema first (ready).
 */
export class PostgresWrites {
  constructor(
    private readonly table: PostgresTable,
    /** resolves once the store's schema is prepared (init()) */
    private readonly ready: () => Promise<void>,
  ) {}

  async put(objects: StoredObject[]): Promise<void> {
    objects.forEach(assertContent);
    if (objects.length === 0) return;
    await this.ready();
    // one row per key (the last one wins, as sequential upserts would): ON CONFLICT cannot touch a row twice
    const byKey = new Map<string, StoredObject>();
    for (const o of objects) byKey.set(JSON.stringify([o.objectId, o.version]), o);
    const rows = [...byKey.values()];
    if (this.table.blobs) await this.putReferenced(rows);
    else await this.table.transaction((client) => this.upsert(client, rows));
  }

  /**
   * Blobs first (atomically, verified), then the rows in the same transaction, which holds the shared blob lock
   * throughout; the blobs the rows referenced before are collected after the commit. A crash in between leaves
   * at most a blob no row references, never a row referencing no blob.
   */
  private async putReferenced(rows: StoredObject[]): Promise<void> {
    const blobs = this.table.blobs!;
    const replaced = await this.table.transaction(async (client) => {
      await this.table.lockBlobs(client, 'shared');
      const contents = new Map(rows.map((o) => [o.sha256, o.content]));
      for (const [sha, content] of contents) await blobs.write(sha, content);
      const previous = await this.referencesOf(client, rows);
      await this.upsert(client, rows);
      const current = new Set([...contents.keys()].map((sha) => BlobDir.reference(sha)));
      return previous.filter((ref) => !current.has(ref));
    });
    await this.collect(replaced);
  }

  /** the content references the rows of these keys hold now */
  private async referencesOf(client: pg.PoolClient, keys: ObjectKey[]): Promise<string[]> {
    const c = this.table.c;
    const { rows } = await client.query<{ ref: string }>(
      `SELECT o.${c.content} AS ref FROM ${this.table.t} o JOIN unnest($1::text[], $2::bigint[]) AS k(id, v) ON o.${c.objectId} = k.id AND o.${c.version} = k.v`,
      keyArrays(keys),
    );
    return rows.map((r) => r.ref);
  }

  /** Upserts the rows: content bytes in statements of at most MAX_STATEMENT_BYTES, or references all in one. */
  private async upsert(client: pg.PoolClient, rows: StoredObject[]): Promise<void> {
    const weight = (o: StoredObject) => (this.table.blobs ? 0 : o.content.length);
    const chunks: StoredObject[][] = [[]];
    let bytes = 0;
    for (const o of rows) {
      if (bytes > 0 && bytes + weight(o) > MAX_STATEMENT_BYTES) {
        chunks.push([]);
        bytes = 0;
      }
      chunks[chunks.length - 1]!.push(o);
      bytes += weight(o);
    }
    const c = this.table.c;
    const shaColumn = this.table.computedSha ? '' : `, ${c.sha256}`;
    const shaValue = this.table.computedSha ? '' : ', x.sha';
    const shaUpdate = this.table.computedSha ? '' : `, ${c.sha256} = excluded.${c.sha256}`;
    const contentType = this.table.blobs ? 'text' : 'bytea';
    const sql = `INSERT INTO ${this.table.t} (${c.objectId}, ${c.version}, ${c.content}, ${c.size}${shaColumn}, ${c.createdAt}, ${c.updatedAt})
      SELECT x.id, x.v, x.content, x.size${shaValue}, to_timestamp(x.created / 1000.0), to_timestamp(x.updated / 1000.0)
      FROM unnest($1::text[], $2::bigint[], $3::${contentType}[], $4::bigint[], $5::text[], $6::bigint[], $7::bigint[]) AS x(id, v, content, size, sha, created, updated)
      ON CONFLICT (${c.objectId}, ${c.version}) DO UPDATE SET ${c.content} = excluded.${c.content}, ${c.size} = excluded.${c.size}${shaUpdate}, ${c.createdAt} = excluded.${c.createdAt}, ${c.updatedAt} = excluded.${c.updatedAt}`;
    for (const chunk of chunks) {
      await client.query(sql, [
        chunk.map((o) => o.objectId),
        chunk.map((o) => o.version),
        chunk.map((o) => (this.table.blobs ? BlobDir.reference(o.sha256) : o.content)),
        chunk.map((o) => o.size),
        chunk.map((o) => o.sha256),
        chunk.map((o) => o.createdAt),
        chunk.map((o) => o.updatedAt),
      ]);
    }
  }

  /** Removes the rows, then (content by reference) the blobs no remaining row references. */
  async delete(keys: ObjectKey[]): Promise<void> {
    if (keys.length === 0) return;
    await this.ready();
    const c = this.table.c;
    const { rows } = await this.table.query<{ ref: string }>(
      `DELETE FROM ${this.table.t} WHERE (${c.objectId}, ${c.version}) IN (SELECT k.id, k.v FROM unnest($1::text[], $2::bigint[]) AS k(id, v))${this.table.blobs ? ` RETURNING ${c.content} AS ref` : ''}`,
      keyArrays(keys),
    );
    if (this.table.blobs) await this.collect(rows.map((r) => r.ref));
  }

  /**
   * Unlinks the blobs of these references that no row references any more (several rows may share one), under
   * the exclusive blob lock so no put can be between writing such a blob and committing its row.
   */
  private async collect(references: string[]): Promise<void> {
    // a malformed reference (someone else's row) never becomes a path
    const shas = references.map((ref) => BlobDir.digestOf(ref)).filter((sha): sha is string => sha !== undefined);
    if (shas.length === 0) return;
    const c = this.table.c;
    await this.table.transaction(async (client) => {
      await this.table.lockBlobs(client, 'exclusive');
      await this.table.blobs!.collect(shas, async (candidates) => {
        const { rows } = await client.query<{ ref: string }>(
          `SELECT DISTINCT ${c.content} AS ref FROM ${this.table.t} WHERE ${c.content} = ANY($1::text[])`,
          [candidates.map((sha) => BlobDir.reference(sha))],
        );
        return new Set(rows.map((r) => BlobDir.digestOf(r.ref)!));
      });
    });
  }
}
