import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../shared/constants.js';
import { checkedDigest, sha256 } from '../digest.js';
import { keyString } from '../stores/fingerprint.js';
import type { StoredObject } from '../stores/types.js';
import type { DualWriteContext } from './context.js';
import type { DualWriteRef, FileRef, RepairAction, SnapshotEntry, SnapshotRef } from './types.js';
import { resumablePass } from './pass.js';
import { refOf } from './work-store/index.js';

/** plan lines read (objects fetched per side, blobs written fsynced) between checkpoints and heartbeats */
const SNAPSHOT_PAGE = 100;
const MANIFEST = 'snapshot/manifest.jsonl';

/**
 * Copies every object the repair will overwrite or delete (content + metadata, hashed) before any write: the
 * content into the work store's blobs by digest (a digest read from a store is checked before it names
 * anything), the metadata into the manifest. Reads the stores only; resumable page by page of the plan (see
 * resumablePass), the blobs of a page redone after a retry reused where intact.
 */
export async function snapshotTargets(
  c: DualWriteContext,
  ref: DualWriteRef & { plan: FileRef },
): Promise<SnapshotRef> {
  const target = await c.target(ref);
  const { labels } = target.dw;
  const work = c.work(target, ref.runKey);
  return c.withStores(target, { readOnly: true }, async (stores) => {
    const { file, state } = await resumablePass<RepairAction, { bytes: number }>({
      work,
      phase: 'snapshot',
      input: ref.plan,
      output: MANIFEST,
      pageSize: SNAPSHOT_PAGE,
      initial: () => ({ bytes: 0 }),
      page: async (page, totals) => {
        const entries: SnapshotEntry[] = [];
        for (const side of ['a', 'b'] as const) {
          const keys = page.filter((p) => p.to === side);
          if (keys.length === 0) continue;
          const found = new Map((await stores[side].get(keys)).map((o) => [keyString(o), o]));
          const blobs: Array<{ sha256: string; content: Buffer }> = [];
          for (const k of keys) {
            const o = found.get(keyString(k));
            if (o) {
              blobs.push({ sha256: checkedContent(o, labels[side]), content: o.content });
              totals.bytes += o.size;
            }
            const { content: _content, ...meta } = o ?? ({} as StoredObject);
            entries.push({
              side,
              objectId: k.objectId,
              version: k.version,
              existed: Boolean(o),
              meta: o ? meta : null,
            });
          }
          await work.putBlobs(blobs);
        }
        return entries;
      },
    });
    return { ...refOf(file), entries: file.lines, bytes: state.bytes };
  });
}

/**
 * The object's digest, fit to name a blob: 64 hex characters (else InvalidDigest naming the object) and the
 * digest of the content the store returned (else the snapshot could not restore it byte-identical).
 */
function checkedContent(o: StoredObject, label: string): string {
  const what = `${keyString(o)} on ${label}`;
  const digest = checkedDigest(o.sha256, what);
  if (o.content.length !== o.size || sha256(o.content) !== digest)
    throw ApplicationFailure.nonRetryable(
      `${what}: its content (${o.content.length} bytes, sha256 ${sha256(o.content)}) does not match its recorded size ${o.size} and sha256 ${digest}: the store holds a corrupt copy, which a snapshot cannot restore`,
      ErrorType.VerificationFailed,
    );
  return digest;
}
