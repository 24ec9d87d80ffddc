import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../shared/constants.js';

/** The one home of SHA-256: hex digests of strings, buffers and files, and the check a digest passes before use. */
export const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** The file's digest, streamed (work files can be large). */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

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
