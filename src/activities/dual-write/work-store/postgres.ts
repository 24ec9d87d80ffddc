import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../../shared/constants.js';
import { checkedDigest, sha256, sha256Chunks } from '../../digest.js';
import { quoteIdentifier } from '../../stores/sql.js';
import type { FileRef } from '../types.js';
import { LineAppender, type AppendCursor, type Sink } from './appender.js';
import type { WantedBlob, WorkStore } from './index.js';
import { mismatch, notThisRun } from './index.js';

/** bytes per chunk row of a work file */
const CHUNK_BYTES = 1024 * 1024;
/** chunk rows fetched per statement when reading */
const CHUNKS_PER_READ = 8;
/** a chunk generation (a staging cursor from a heartbeat is checked against it) */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** blob bytes per INSERT statement */
const MAX_STATEMENT_BYTES = 16 * 1024 * 1024;

/** the tables of a prefix, created once per pool (every worker may be the first) */
const ensured = new WeakMap<pg.Pool, Map<string, Promise<void>>>();

/**
 * Work files in Postgres, so that a retry on another worker host finds what the first attempt wrote. Three
 * tables, created on first use: `<prefix>_files` (one row per file of a run: its digest, size, lines and the
 * generation of chunks holding it), `<prefix>_chunks` (the bytes, up to CHUNK_BYTES a row) and `<prefix>_blobs`
 * (snapshot content by run and digest). A file is written chunk by chunk under a new generation (which a retry
 * can resume from its last checkpoint) and becomes visible when its `_files` row points at it, in one
 * transaction that drops the chunks of the file it replaces: a reader sees the old file or the new one, never a
 * mix. Lines are streamed both ways.
 */
export class PostgresWorkStore implements WorkStore {
  private readonly files: string;
  private readonly chunks: string;
  private readonly blobs: string;
  private readonly prefix: string;

  constructor(
    private readonly pool: pg.Pool,
    private readonly table: string,
    private readonly runKey: string,
  ) {
    this.files = quoteIdentifier(`${table}_files`, 'workStore.table');
    this.chunks = quoteIdentifier(`${table}_chunks`, 'workStore.table');
    this.blobs = quoteIdentifier(`${table}_blobs`, 'workStore.table');
    this.prefix = `postgres:${table}/${runKey}/`;
  }

  private ensureTables(): Promise<void> {
    let byPrefix = ensured.get(this.pool);
    if (!byPrefix) ensured.set(this.pool, (byPrefix = new Map()));
    let done = byPrefix.get(this.table);
    if (!done) {
      done = this.transaction(async (client) => {
        // two workers creating the tables at once must not collide in the catalog
        await client.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`durable-runbooks work store ${this.table}`]);
        await client.query(
          `CREATE TABLE IF NOT EXISTS ${this.files} (run_key text NOT NULL, name text NOT NULL, generation text NOT NULL, sha256 text NOT NULL, bytes bigint NOT NULL, lines bigint NOT NULL, chunks integer NOT NULL, written_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (run_key, name))`,
        );
        await client.query(
          `CREATE TABLE IF NOT EXISTS ${this.chunks} (generation text NOT NULL, seq integer NOT NULL, run_key text NOT NULL, data bytea NOT NULL, PRIMARY KEY (generation, seq))`,
        );
        await client.query(
          `CREATE TABLE IF NOT EXISTS ${this.blobs} (run_key text NOT NULL, sha256 text NOT NULL, size bigint NOT NULL, data bytea NOT NULL, PRIMARY KEY (run_key, sha256))`,
        );
      });
      done.catch(() => byPrefix.delete(this.table));
      byPrefix.set(this.table, done);
    }
    return done;
  }

  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  private nameOf(ref: FileRef): string {
    if (!ref.path.startsWith(this.prefix)) notThisRun(ref, this.prefix);
    return ref.path.slice(this.prefix.length);
  }

  async appender(name: string): Promise<LineAppender> {
    await this.ensureTables();
    return new LineAppender(this.sink(name, randomUUID()), CHUNK_BYTES);
  }

  async resume(name: string, cursor: AppendCursor): Promise<LineAppender | undefined> {
    await this.ensureTables();
    if (!UUID.test(cursor.staging)) return undefined;
    // chunks written after the last checkpoint are dropped; the ones before it must all be there
    await this.pool.query(`DELETE FROM ${this.chunks} WHERE generation = $1 AND seq >= $2`, [
      cursor.staging,
      cursor.appends,
    ]);
    const { rows } = await this.pool.query<{ n: number; bytes: string | null }>(
      `SELECT count(*)::int AS n, sum(length(data))::text AS bytes FROM ${this.chunks} WHERE generation = $1`,
      [cursor.staging],
    );
    if (rows[0]!.n !== cursor.appends || Number(rows[0]!.bytes ?? 0) !== cursor.bytes) return undefined;
    const staged = this.chunksOf(cursor.staging, cursor.appends, `${this.prefix}${name} (staged)`);
    return LineAppender.resumed(this.sink(name, cursor.staging), CHUNK_BYTES, cursor, staged);
  }

  async writeText(name: string, text: string): Promise<FileRef> {
    await this.ensureTables();
    const data = Buffer.from(text);
    const sink = this.sink(name, randomUUID());
    await sink.append(data, 0);
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    return sink.commit({ sha256: sha256(data), lines, bytes: data.length, appends: 1 });
  }

  /**
   * Chunks of one generation, written as they come; committing makes the generation the file `name` and drops
   * the chunks of the file it replaces, in one transaction.
   */
  private sink(name: string, generation: string): Sink {
    return {
      staging: generation,
      append: async (chunk, seq) => {
        await this.pool.query(
          `INSERT INTO ${this.chunks} (generation, seq, run_key, data) VALUES ($1, $2, $3, $4) ON CONFLICT (generation, seq) DO UPDATE SET data = excluded.data`,
          [generation, seq, this.runKey, chunk],
        );
      },
      sync: async () => {},
      commit: async ({ sha256: sha, lines, bytes, appends }) => {
        await this.transaction(async (client) => {
          const { rows } = await client.query<{ generation: string }>(
            `SELECT generation FROM ${this.files} WHERE run_key = $1 AND name = $2 FOR UPDATE`,
            [this.runKey, name],
          );
          await client.query(
            `INSERT INTO ${this.files} (run_key, name, generation, sha256, bytes, lines, chunks) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (run_key, name) DO UPDATE SET generation = excluded.generation, sha256 = excluded.sha256, bytes = excluded.bytes, lines = excluded.lines, chunks = excluded.chunks, written_at = now()`,
            [this.runKey, name, generation, sha, bytes, lines, appends],
          );
          if (rows[0] && rows[0].generation !== generation)
            await client.query(`DELETE FROM ${this.chunks} WHERE generation = $1`, [rows[0].generation]);
        });
        return { path: `${this.prefix}${name}`, sha256: sha };
      },
      abandon: async () => {
        await this.pool.query(`DELETE FROM ${this.chunks} WHERE generation = $1`, [generation]);
      },
    };
  }

  private async fileRow(ref: FileRef): Promise<{ generation: string; sha256: string; chunks: number }> {
    const name = this.nameOf(ref);
    await this.ensureTables();
    const { rows } = await this.pool.query<{ generation: string; sha256: string; chunks: number }>(
      `SELECT generation, sha256, chunks FROM ${this.files} WHERE run_key = $1 AND name = $2`,
      [this.runKey, name],
    );
    if (!rows[0])
      throw ApplicationFailure.nonRetryable(
        `${ref.path}: no such work file in the Postgres work store (deleted since it was written?)`,
        ErrorType.EvidenceMismatch,
      );
    return rows[0];
  }

  async latest(name: string): Promise<FileRef | undefined> {
    await this.ensureTables();
    const { rows } = await this.pool.query<{ sha256: string }>(
      `SELECT sha256 FROM ${this.files} WHERE run_key = $1 AND name = $2`,
      [this.runKey, name],
    );
    return rows[0] && { path: `${this.prefix}${name}`, sha256: rows[0].sha256 };
  }

  async check(ref: FileRef): Promise<void> {
    const expected = checkedDigest(ref.sha256, `${ref.path}: recorded sha256`);
    const row = await this.fileRow(ref);
    if (row.sha256 !== expected) mismatch(ref, row.sha256);
    // the row says what was written; the chunks are what will be read
    const actual = await sha256Chunks(this.bytes(ref));
    if (actual !== expected) mismatch(ref, actual);
  }

  async *bytes(ref: FileRef): AsyncGenerator<Buffer> {
    const row = await this.fileRow(ref);
    yield* this.chunksOf(row.generation, row.chunks, ref.path);
  }

  /** The first `count` chunks of a generation in order; a gap (replaced while read) is a retryable error. */
  private async *chunksOf(generation: string, count: number, what: string): AsyncGenerator<Buffer> {
    let next = 0;
    while (next < count) {
      const { rows } = await this.pool.query<{ seq: number; data: Buffer }>(
        `SELECT seq, data FROM ${this.chunks} WHERE generation = $1 AND seq >= $2 AND seq < $3 ORDER BY seq LIMIT ${CHUNKS_PER_READ}`,
        [generation, next, count],
      );
      for (const r of rows) {
        if (r.seq !== next) break;
        yield r.data;
        next++;
      }
      // replaced while being read: the retry reads the file that replaced it (and checks its digest)
      if (rows.length === 0 || rows[rows.length - 1]!.seq !== next - 1)
        throw new Error(`${what}: chunk ${next} of ${count} is gone (the file was replaced while read)`);
    }
  }

  async putBlobs(blobs: Array<{ sha256: string; content: Buffer }>): Promise<void> {
    if (blobs.length === 0) return;
    await this.ensureTables();
    const unique = new Map<string, Buffer>();
    for (const b of blobs) unique.set(checkedDigest(b.sha256, 'snapshot blob'), b.content);
    let batch: Array<[string, Buffer]> = [];
    let size = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      // an existing blob is kept only when Postgres finds its content intact; a corrupt one is overwritten
      await this.pool.query(
        `INSERT INTO ${this.blobs} (run_key, sha256, size, data) SELECT $1, x.sha, x.size, x.data FROM unnest($2::text[], $3::bigint[], $4::bytea[]) AS x(sha, size, data)
         ON CONFLICT (run_key, sha256) DO UPDATE SET data = excluded.data, size = excluded.size
         WHERE encode(sha256(${this.blobs}.data), 'hex') <> ${this.blobs}.sha256 OR length(${this.blobs}.data) <> ${this.blobs}.size`,
        [this.runKey, batch.map(([s]) => s), batch.map(([, c]) => c.length), batch.map(([, c]) => c)],
      );
      batch = [];
      size = 0;
    };
    for (const [sha, content] of unique) {
      if (sha256(content) !== sha) throw new Error(`snapshot blob ${sha}: content does not match its digest`);
      if (size > 0 && size + content.length > MAX_STATEMENT_BYTES) await flush();
      batch.push([sha, content]);
      size += content.length;
    }
    await flush();
  }

  async getBlobs(wanted: WantedBlob[]): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    if (wanted.length === 0) return out;
    await this.ensureTables();
    const shas = [...new Set(wanted.map((w) => checkedDigest(w.sha256, w.what)))];
    const { rows } = await this.pool.query<{ sha256: string; data: Buffer }>(
      `SELECT sha256, data FROM ${this.blobs} WHERE run_key = $1 AND sha256 = ANY($2::text[])`,
      [this.runKey, shas],
    );
    for (const r of rows) out.set(r.sha256, r.data);
    for (const w of wanted) {
      const content = out.get(w.sha256);
      if (!content)
        throw ApplicationFailure.nonRetryable(
          `${w.what}: snapshot blob ${w.sha256} is not in the Postgres work store`,
          ErrorType.EvidenceMismatch,
        );
      if (content.length !== w.size || sha256(content) !== w.sha256)
        throw ApplicationFailure.nonRetryable(
          `${w.what}: snapshot blob ${w.sha256} is corrupt (${content.length} bytes, sha256 ${sha256(content)})`,
          ErrorType.EvidenceMismatch,
        );
    }
    return out;
  }
}
