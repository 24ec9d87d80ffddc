import { createReadStream } from 'node:fs';
import { hostname } from 'node:os';
import { join, relative, isAbsolute } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../../shared/constants.js';
import { checkedDigest, sha256, sha256File } from '../../digest.js';
import { StagedFile, writeFileAtomically } from '../../files.js';
import { BlobDir, BlobMissingError } from '../../stores/blob-dir.js';
import type { FileRef } from '../types.js';
import { LineAppender, type AppendCursor, type Sink } from './appender.js';
import type { WantedBlob, WorkStore } from './index.js';
import { mismatch, notThisRun } from './index.js';

/** bytes gathered before an append to the staging file */
const CHUNK_BYTES = 256 * 1024;

const isMissing = (error: unknown): boolean => (error as NodeJS.ErrnoException | null)?.code === 'ENOENT';

/**
 * Work files in `<workDir>/<runKey>/` on the worker's host: written atomically (streamed into a staging file
 * beside the file, which checkpoints fsync and a retry on the same host resumes; fsynced and renamed at the
 * end), 0600 in 0700 directories; snapshot blobs in a private BlobDir under `snapshot/blobs`. A
 * file another host wrote is not here unless the directory is shared: that is WorkFileMissing, retryable, so
 * that the worker that has it (or a shared volume) can take the retry.
 */
export class LocalWorkStore implements WorkStore {
  readonly dir: string;
  private readonly blobs: BlobDir;

  constructor(workDir: string, runKey: string) {
    this.dir = join(workDir, runKey.replace(/[^A-Za-z0-9._-]/g, '_'));
    this.blobs = new BlobDir(join(this.dir, 'snapshot', 'blobs'), { private: true });
  }

  async appender(name: string): Promise<LineAppender> {
    return new LineAppender(this.sink(await StagedFile.create(join(this.dir, name))), CHUNK_BYTES);
  }

  async resume(name: string, cursor: AppendCursor): Promise<LineAppender | undefined> {
    const file = await StagedFile.resume(join(this.dir, name), cursor.staging, cursor.bytes);
    if (!file) return undefined;
    const staged = cursor.bytes > 0 ? createReadStream(file.stagingPath, { end: cursor.bytes - 1 }) : [];
    return LineAppender.resumed(this.sink(file), CHUNK_BYTES, cursor, staged);
  }

  private sink(file: StagedFile): Sink {
    return {
      staging: file.staging,
      append: (chunk) => file.append(chunk),
      sync: () => file.sync(),
      commit: async ({ sha256 }) => {
        await file.commit();
        return { path: file.path, sha256, host: hostname() };
      },
      abandon: () => file.abandon(),
    };
  }

  async writeText(name: string, text: string): Promise<FileRef> {
    const path = join(this.dir, name);
    await writeFileAtomically(path, text);
    return { path, sha256: sha256(text), host: hostname() };
  }

  async latest(name: string): Promise<FileRef | undefined> {
    const path = join(this.dir, name);
    try {
      return { path, sha256: await sha256File(path), host: hostname() };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async check(ref: FileRef): Promise<void> {
    const inside = relative(this.dir, ref.path);
    if (!inside || inside.startsWith('..') || isAbsolute(inside)) notThisRun(ref, this.dir);
    let actual: string;
    try {
      actual = await sha256File(ref.path);
    } catch (error) {
      if (isMissing(error)) throw this.missing(ref.path, ref.host);
      throw error;
    }
    if (actual !== checkedDigest(ref.sha256, `${ref.path}: recorded sha256`)) mismatch(ref, actual);
  }

  bytes(ref: FileRef): AsyncIterable<Buffer> {
    return createReadStream(ref.path);
  }

  async putBlobs(blobs: Array<{ sha256: string; content: Buffer }>): Promise<void> {
    for (const b of blobs) await this.blobs.write(b.sha256, b.content);
  }

  async getBlobs(wanted: WantedBlob[]): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    for (const w of wanted) {
      if (out.has(w.sha256)) continue;
      try {
        out.set(w.sha256, await this.blobs.read(w.sha256, w.size, w.what));
      } catch (error) {
        if (error instanceof BlobMissingError) throw this.missing(this.blobs.path(w.sha256, w.what));
        throw error;
      }
    }
    return out;
  }

  private missing(path: string, writtenOn?: string): ApplicationFailure {
    return ApplicationFailure.retryable(
      `work file ${path}${writtenOn ? ` (written on ${writtenOn})` : ''} is not on this worker's host ${hostname()}: share the target's workDir between all workers (one volume mounted at the same path), or set dualWrite.workStore: { type: postgres, urlEnv } so that every worker reads the work files from Postgres`,
      ErrorType.WorkFileMissing,
    );
  }
}
