import { createHash } from 'node:crypto';
import { sha256 } from '../digest.js';
import type { KeyRange, ObjectKey, ObjectMeta, SegmentSummary, StoredObject } from './types.js';

/** Field separator inside a fingerprint (ASCII unit separator, never in an object id). */
export const SEP = '\x1f';

/** The text every store hashes per row: id, version, sha256, size, created and updated time. */
export const fingerprintText = (m: ObjectMeta): string =>
  [m.objectId, m.version, m.sha256, m.size, m.createdAt, m.updatedAt].join(SEP);

/**
 * The row fingerprint: the first 8 bytes of md5(fingerprintText) as a signed 64-bit integer. Stores that keep
 * it in a column (the object store always; Postgres and SQLite tables with `columns.fingerprint`) sum the stored
 * value; the others compute the same number on the fly.
 */
export function rowFingerprint(m: ObjectMeta): bigint {
  return createHash('md5').update(fingerprintText(m)).digest().readBigInt64BE(0);
}

/** The two signed 32-bit halves of a fingerprint, the numbers a segment summary sums. */
const fingerprintHalves = (fp: bigint): [number, number] => [Number(fp >> 32n), Number(BigInt.asIntN(32, fp))];

/** count, Σ high half, Σ low half: exact (each sum stays far below 2^63 for any realistic row count). */
export function summarizeRows(rows: Iterable<ObjectMeta>): SegmentSummary {
  let count = 0;
  let h1 = 0n;
  let h2 = 0n;
  for (const row of rows) {
    const [a, b] = fingerprintHalves(rowFingerprint(row));
    count++;
    h1 += BigInt(a);
    h2 += BigInt(b);
  }
  return { count, h1: h1.toString(), h2: h2.toString() };
}

export const sameSummary = (a: SegmentSummary, b: SegmentSummary): boolean =>
  a.count === b.count && a.h1 === b.h1 && a.h2 === b.h2;

/**
 * Bytewise UTF-8 order of two strings without encoding them: UTF-16 code units sort like code points except
 * that a surrogate (a code point ≥ U+10000) must sort after U+E000–U+FFFF.
 */
export function compareIds(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys && (xs ? y >= 0xe000 : x >= 0xe000)) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

export function compareKeys(a: ObjectKey, b: ObjectKey): number {
  return compareIds(a.objectId, b.objectId) || a.version - b.version;
}

export const inRange = (k: ObjectKey, r: KeyRange): boolean =>
  (!r.from || compareKeys(k, r.from) >= 0) && (!r.to || compareKeys(k, r.to) < 0);

/** Refuses content that does not match its declared digest and size (never write a corrupt copy). */
export function assertContent(o: StoredObject): void {
  if (o.content.length !== o.size)
    throw new Error(`${o.objectId}@${o.version}: content is ${o.content.length} bytes, metadata says ${o.size}`);
  const actual = sha256(o.content);
  if (actual !== o.sha256)
    throw new Error(`${o.objectId}@${o.version}: content sha256 ${actual} does not match ${o.sha256}`);
}

export const keyString = (k: ObjectKey): string => `${k.objectId}@${k.version}`;

/** Same object on both sides: digest, size and both timestamps (what classify() calls "no drift"). */
export const sameMeta = (a: ObjectMeta, b: ObjectMeta): boolean =>
  a.sha256 === b.sha256 && a.size === b.size && a.createdAt === b.createdAt && a.updatedAt === b.updatedAt;
