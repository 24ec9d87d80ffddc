import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { beforeEach, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/activities/digest.js';
import { BlobDir } from '../../src/activities/stores/blob-dir.js';
import { ObjectStore } from '../../src/activities/stores/object-store.js';
import { ErrorType } from '../../src/shared/constants.js';
import { keyOf, object, useTempDirs } from '../support/stores.js';

const tempDir = useTempDirs();

describe('object-store blobs', () => {
  let s: ObjectStore;
  let root: string;
  beforeEach(async () => {
    root = join(tempDir(), 'blobs-test');
    s = await ObjectStore.open(root);
    return () => s.close();
  });

  const blobFiles = (): string[] =>
    readdirSync(join(root, 'blobs'), { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile())
      .map((d) => d.name);

  it('lays blobs out by digest and leaves no temporary files', async () => {
    const o = object('one', 1);
    await s.put([o]);
    expect(s.blobPath(o.sha256)).toBe(join(root, 'blobs', o.sha256.slice(0, 2), o.sha256));
    expect(blobFiles()).toEqual([o.sha256]);
  });

  it('throws on get() when a blob is corrupt, and a put of the right content repairs it', async () => {
    const o = object('fragile', 1, 'precious bytes');
    await s.put([o]);
    writeFileSync(s.blobPath(o.sha256), 'precious bytez');
    await expect(s.get([keyOf(o)])).rejects.toThrow(/fragile@1: blob [0-9a-f]{64} is corrupt/);
    writeFileSync(s.blobPath(o.sha256), 'short');
    await expect(s.get([keyOf(o)])).rejects.toThrow(/corrupt/);
    await s.put([o]);
    expect((await s.get([keyOf(o)]))[0]!.content.toString()).toBe('precious bytes');
    rmSync(s.blobPath(o.sha256));
    await expect(s.get([keyOf(o)])).rejects.toThrow(/fragile@1: blob [0-9a-f]{64} is missing/);
  });

  it('keeps a blob shared by two objects until the last one is deleted', async () => {
    const a = object('shared-a', 1, 'same bytes');
    const b = object('shared-b', 7, 'same bytes');
    expect(a.sha256).toBe(b.sha256);
    await s.put([a, b]);
    expect(blobFiles()).toEqual([a.sha256]);
    await s.delete([keyOf(a)]);
    expect(blobFiles()).toEqual([a.sha256]);
    expect((await s.get([keyOf(b)]))[0]!.content.toString()).toBe('same bytes');
    await s.delete([keyOf(b)]);
    expect(blobFiles()).toEqual([]);
  });

  it('writes no blob for a refused batch', async () => {
    await expect(s.put([object('ok', 1), { ...object('bad', 1), size: 1 }])).rejects.toThrow(/bad@1/);
    expect(blobFiles()).toEqual([]);
  });

  it('collects the old blob when an object is overwritten with other content', async () => {
    const v1 = object('doc', 1, 'first');
    const v2 = object('doc', 1, 'second');
    await s.put([v1]);
    await s.put([v2]);
    expect(blobFiles()).toEqual([v2.sha256]);
  });

  it('keeps its index and blobs across reopening', async () => {
    const o = object('durable', 3);
    await s.put([o]);
    await s.close();
    s = new ObjectStore({ root });
    expect((await s.get([keyOf(o)]))[0]!.content.equals(o.content)).toBe(true);
  });
});

describe('blob directories', () => {
  it('refuse a digest that is not 64 hex characters before it becomes a path (InvalidDigest, naming the object)', async () => {
    const blobs = new BlobDir(join(tempDir(), 'blobs'));
    for (const bad of ['../../../etc/passwd', 'A'.repeat(64), `${'a'.repeat(63)}/`, ''])
      for (const call of [() => blobs.path(bad, 'obj@1 on store'), () => BlobDir.reference(bad, 'obj@1 on store')]) {
        let error: unknown;
        try {
          call();
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(ApplicationFailure);
        expect((error as ApplicationFailure).type).toBe(ErrorType.InvalidDigest);
        expect((error as ApplicationFailure).nonRetryable).toBe(true);
        expect((error as Error).message).toContain('obj@1 on store');
      }
    await expect(blobs.write('../x', Buffer.from('x'), 'obj@2')).rejects.toThrow(/obj@2/);
    expect(existsSync(join(tempDir(), 'x'))).toBe(false);
  });

  it('private ones write 0600 blobs in 0700 directories, and reuse a blob only when its content is intact', async () => {
    const dir = join(tempDir(), 'private-blobs');
    const blobs = new BlobDir(dir, { private: true });
    const content = Buffer.from('snapshot of an object');
    const digest = sha256(content);
    await blobs.write(digest, content);
    const { statSync } = await import('node:fs');
    expect(statSync(blobs.path(digest)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, digest.slice(0, 2))).mode & 0o777).toBe(0o700);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    writeFileSync(blobs.path(digest), 'tampered');
    await blobs.write(digest, content);
    expect(await blobs.read(digest, content.length, 'obj@1')).toEqual(content);
  });
});
