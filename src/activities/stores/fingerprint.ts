import { createHash } from 'node:crypto';
import type { KeyRange, ObjectKey, ObjectMeta, SegmentSummary, StoredObject } from './types.js';

/** Field separator inside a fingerprint (ASCII unit separator, never in an object id). */
export const SEP = '\x1f';

/** The text every store hashes per row: id, version, sha256, size, created and updated time. */
export const fingerprintText = (m: ObjectMeta): string =>
  [m.objectId, m.version, m.sha256, m.size, m.createdAt, m.updatedAt].join(SEP);

/** md5 of the fingerprint, cut into two unsigned 32-bit numbers (summed per segment; 1M rows stay < 2^53). */
export function rowFingerprint(m: ObjectMeta): [number, number] {
  const hex = createHash('md5').update(fingerprintText(m)).digest('hex');
  return [Number.parseInt(hex.slice(0, 8), 16), Number.parseInt(hex.slice(8, 16), 16)];
}

export function summarizeRows(rows: Iterable<ObjectMeta>): SegmentSummary {
  let count = 0;
  let h1 = 0n;
  let h2 = 0n;
  for (const row of rows) {
    const [a, b] = rowFingerprint(row);
    count++;
    h1 += BigInt(a);
    h2 += BigInt(b);
  }
  return { count, h1: h1.toString(), h2: h2.toString() };
}

export const sameSummary = (a: SegmentSummary, b: SegmentSummary): boolean => a.count === b.count && a.h1 === b.h1 && a.h2 === b.h2;

export function compareKeys(a: ObjectKey, b: ObjectKey): number {
  if (a.objectId !== b.objectId) return Buffer.compare(Buffer.from(a.objectId), Buffer.from(b.objectId));
  return a.version - b.version;
}

export const inRange = (k: ObjectKey, r: KeyRange): boolean =>
  (!r.from || compareKeys(k, r.from) >= 0) && (!r.to || compareKeys(k, r.to) < 0);

export const sha256Hex = (content: Buffer): string => createHash('sha256').update(content).digest('hex');

/** Refuses content that does not match its declared digest and size (never write a corrupt copy). */
export function assertContent(o: StoredObject): void {
  if (o.content.length !== o.size) throw new Error(`${o.objectId}@${o.version}: content is ${o.content.length} bytes, metadata says ${o.size}`);
  const actual = sha256Hex(o.content);
  if (actual !== o.sha256) throw new Error(`${o.objectId}@${o.version}: content sha256 ${actual} does not match ${o.sha256}`);
}

export const keyString = (k: ObjectKey): string => `${k.objectId}@${k.version}`;

/** Same object on both sides: digest, size and both timestamps (what classify() calls "no drift"). */
export const sameMeta = (a: ObjectMeta, b: ObjectMeta): boolean =>
  a.sha256 === b.sha256 && a.size === b.size && a.createdAt === b.createdAt && a.updatedAt === b.updatedAt;
