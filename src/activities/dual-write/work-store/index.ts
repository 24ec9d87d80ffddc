import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../../shared/constants.js';
import type { DualWriteConfig } from '../../../shared/schemas.js';
import type { StoreFactory } from '../../stores/index.js';
import type { FileRef } from '../types.js';
import type { AppendCursor, LineAppender, WrittenFile } from './appender.js';
import { decodeLines } from './lines.js';
import { LocalWorkStore } from './local.js';
import { PostgresWorkStore } from './postgres.js';

export type { AppendCursor, LineAppender, WrittenFile } from './appender.js';
export { pagesOf } from './lines.js';

/** A snapshot blob asked for: its digest (checked), its size, and the object it belongs to (for errors). */
export interface WantedBlob {
  sha256: string;
  size: number;
  what: string;
}

/**
 * Where one run's work files (diff, isolation report, repair plan, snapshot manifest and blobs, artifacts) live:
 * a directory on the worker's host (`workDir`) or tables in Postgres (`workStore`). Files are immutable once
 * written (a rewrite of the same name replaces it whole), streamed both ways, and read only after their digest
 * matched the one the workflow recorded.
 */
export interface WorkStore {
  /** Starts writing the work file `name` (JSON lines); it appears when the appender finishes. */
  appender(name: string): Promise<LineAppender>;
  /**
   * Goes on with an earlier attempt's write of `name` from its last checkpoint; undefined when that cannot be
   * done here (its staging file is on another host, or gone): then write it again.
   */
  resume(name: string, cursor: AppendCursor): Promise<LineAppender | undefined>;
  writeText(name: string, text: string): Promise<FileRef>;
  /** The file `name` as it is now (its current digest), undefined when there is none: for files kept between runs. */
  latest(name: string): Promise<FileRef | undefined>;
  /**
   * The file is there and has the digest recorded in `ref`: otherwise WorkFileMissing (retryable: it is on
   * another host) or EvidenceMismatch (not retryable).
   */
  check(ref: FileRef): Promise<void>;
  /** the file's bytes, streamed (after check()) */
  bytes(ref: FileRef): AsyncIterable<Buffer>;
  /** Stores snapshot blobs by digest (each checked); an existing blob is kept only if its content is intact. */
  putBlobs(blobs: Array<{ sha256: string; content: Buffer }>): Promise<void>;
  /** The blobs' contents, each checked against its size and digest, by digest. */
  getBlobs(wanted: WantedBlob[]): Promise<Map<string, Buffer>>;
}

/** The run's work store, as the target configures it. */
export function openWorkStore(
  dw: DualWriteConfig,
  resolvePath: (p: string) => string,
  runKey: string,
  stores: StoreFactory,
): WorkStore {
  if (dw.workStore) return new PostgresWorkStore(stores.pool(dw.workStore.urlEnv), dw.workStore.table, runKey);
  return new LocalWorkStore(resolvePath(dw.workDir!), runKey);
}

/** Writes the work file `name` from `rows`, one JSON line each, streamed, in one go. */
export async function writeLines(
  work: WorkStore,
  name: string,
  rows: AsyncIterable<unknown> | Iterable<unknown>,
): Promise<WrittenFile> {
  const appender = await work.appender(name);
  try {
    await appender.writeAll(rows);
    return await appender.finish();
  } catch (error) {
    await appender.abandon().catch(() => {});
    throw error;
  }
}

/** The lines of a work file after its digest was checked. */
export async function readLines<T>(work: WorkStore, ref: FileRef): Promise<AsyncGenerator<T>> {
  await work.check(ref);
  return decodeLines<T>(work.bytes(ref));
}

/** Just the reference of a written file (what the workflow records). */
export const refOf = (f: FileRef): FileRef => ({ path: f.path, sha256: f.sha256, ...(f.host ? { host: f.host } : {}) });

export function mismatch(ref: FileRef, actual: string): never {
  throw ApplicationFailure.nonRetryable(
    `${ref.path}: sha256 ${actual} does not match ${ref.sha256} recorded in the workflow`,
    ErrorType.EvidenceMismatch,
  );
}

export function notThisRun(ref: FileRef, where: string): never {
  throw ApplicationFailure.nonRetryable(
    `${ref.path} is not a work file of this run (expected one under ${where}): did the target's workDir or workStore change during the run?`,
    ErrorType.EvidenceMismatch,
  );
}
