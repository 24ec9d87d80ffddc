import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../shared/constants.js';

/** The one home of SHA-256: hex digests of strings, buffers and files, and the check a digest passes before use. */
export const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** A running SHA-256 for data that arrives in pieces (`.update(chunk)`, then `.digest('hex')`). */
export const sha256Hasher = (): Hash => createHash('sha256');

/** The digest of a stream of chunks (a file, a table's chunk rows), never held in memory whole. */
export async function sha256Chunks(
  chunks: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
): Promise<string> {
  const hash = sha256Hasher();
  for await (const chunk of chunks) hash.update(chunk);
  return hash.digest('hex');
}

/** The file's digest, streamed (work files can be large). */
export const sha256File = (path: string): Promise<string> => sha256Chunks(createReadStream(path));

const SHA256_HEX = /^[0-9a-f]{64}$/;

export const isSha256Hex = (value: unknown): value is string => typeof value === 'string' && SHA256_HEX.test(value);

/**
 * A digest read from a store, a manifest or a signal becomes a path or a lookup key only after this check:
 * exactly 64 lowercase hex characters. Anything else is a non-retryable InvalidDigest naming `what`.
 */
export function checkedDigest(value: unknown, what: string): string {
  if (isSha256Hex(value)) return value;
  throw ApplicationFailure.nonRetryable(
    `${what}: ${JSON.stringify(value)?.slice(0, 80)} is not a sha256 hex digest (64 lowercase hex characters)`,
    ErrorType.InvalidDigest,
  );
}
