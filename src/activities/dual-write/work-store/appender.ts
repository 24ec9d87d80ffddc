import type { Hash } from 'node:crypto';
import { sha256Hasher } from '../../digest.js';
import type { FileRef } from '../types.js';

/** What a work file's writer had made durable at its last checkpoint: enough for a retry to go on from there. */
export interface AppendCursor {
  /** the staging file (local) or chunk generation (Postgres) the lines go to until the file is finished */
  staging: string;
  bytes: number;
  lines: number;
  /** appends made (the Postgres chunks) */
  appends: number;
}

/** Where an appender's bytes go until the file is finished: a store's staging area. */
export interface Sink {
  readonly staging: string;
  append(chunk: Buffer, index: number): Promise<void>;
  /** everything appended so far survives a crash */
  sync(): Promise<void>;
  /** makes the staged bytes the work file `name`, replacing an earlier one whole */
  commit(summary: { sha256: string; lines: number; bytes: number; appends: number }): Promise<FileRef>;
  /** drops the staged bytes (a write that failed and will not be resumed) */
  abandon(): Promise<void>;
}

/** A work file as written: its ref, its lines and bytes. */
export interface WrittenFile extends FileRef {
  lines: number;
  bytes: number;
}

/**
 * Writes a work file as JSON lines, gathered into chunks of `chunkBytes` and hashed on the way (the digest
 * without reading the file back). checkpoint() makes the lines so far durable and returns the cursor a
 * heartbeat carries; a retry resumes from it (LineAppender.resumed) instead of writing everything again.
 */
export class LineAppender {
  private parts: string[] = [];
  private pending = 0;

  constructor(
    private readonly sink: Sink,
    private readonly chunkBytes: number,
    private readonly hash: Hash = sha256Hasher(),
    private lines = 0,
    private bytes = 0,
    private appends = 0,
  ) {}

  /** An appender going on after `cursor`, the hash rebuilt from the bytes already staged. */
  static async resumed(
    sink: Sink,
    chunkBytes: number,
    cursor: AppendCursor,
    staged: AsyncIterable<Buffer> | Iterable<Buffer>,
  ): Promise<LineAppender> {
    const hash = sha256Hasher();
    for await (const chunk of staged) hash.update(chunk);
    return new LineAppender(sink, chunkBytes, hash, cursor.lines, cursor.bytes, cursor.appends);
  }

  async write(row: unknown): Promise<void> {
    const line = `${JSON.stringify(row)}\n`;
    this.parts.push(line);
    this.pending += line.length;
    this.lines++;
    if (this.pending >= this.chunkBytes) await this.flush();
  }

  async writeAll(rows: AsyncIterable<unknown> | Iterable<unknown>): Promise<void> {
    for await (const row of rows) await this.write(row);
  }

  private async flush(): Promise<void> {
    if (this.parts.length === 0) return;
    const chunk = Buffer.from(this.parts.join(''));
    this.parts = [];
    this.pending = 0;
    this.hash.update(chunk);
    await this.sink.append(chunk, this.appends++);
    this.bytes += chunk.length;
  }

  async checkpoint(): Promise<AppendCursor> {
    await this.flush();
    await this.sink.sync();
    return { staging: this.sink.staging, bytes: this.bytes, lines: this.lines, appends: this.appends };
  }

  /** Drops what was staged: for a write that failed and will not be resumed. */
  abandon(): Promise<void> {
    return this.sink.abandon();
  }

  async finish(): Promise<WrittenFile> {
    await this.flush();
    const summary = { sha256: this.hash.digest('hex'), lines: this.lines, bytes: this.bytes, appends: this.appends };
    const ref = await this.sink.commit(summary);
    return { ...ref, lines: this.lines, bytes: this.bytes };
  }
}
