import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../shared/constants.js';
import { checkedDigest, sha256 } from '../digest.js';
import { keyString } from '../stores/fingerprint.js';
import type { StoredObject } from '../stores/types.js';
import type { DualWriteContext } from './context.js';
import type { DualWriteRef, FileRef, RepairAction, SnapshotEntry, SnapshotRef } from './types.js';
import { pagesOf, readLines, refOf } from './work-store/index.js';

/** plan lines read (and objects fetched per side) at a time */
const SNAPSHOT_PAGE = 500;
export const MANIFEST = 'snapshot/manifest.jsonl';

/**
 * Copies every object the repair will overwrite or delete (content + metadata, hashed) before any write: the
 * content into the work store's blobs by digest (a digest read from a store is checked before it names
 * anything), the metadata into the manifest. Reads the stores only; heartbeats `{ phase: 'snapshot', line }`
 * per page of the plan. A retry snapshots again from the start, reusing every blob it finds intact.
 */
export async function snapshotTargets(
  c: DualWriteContext,
  ref: DualWriteRef & { plan: FileRef },
): Promise<SnapshotRef> {
  const target = await c.target(ref);
  const { labels } = target.dw;
  const work = c.work(target, ref.runKey);
  const plan = await readLines<RepairAction>(work, ref.plan);
  const ctx = Context.current();
  return c.withStores(target, { readOnly: true }, async (stores) => {
    let bytes = 0;
    const entries = (async function* (): AsyncGenerator<SnapshotEntry> {
      for await (const [line, page] of pagesOf(plan, SNAPSHOT_PAGE)) {
        for (const side of ['a', 'b'] as const) {
          const keys = page.filter((p) => p.to === side);
          if (keys.length === 0) continue;
          const found = new Map((await stores[side].get(keys)).map((o) => [keyString(o), o]));
          const blobs: Array<{ sha256: string; content: Buffer }> = [];
          const out: SnapshotEntry[] = [];
          for (const k of keys) {
            const o = found.get(keyString(k));
            if (o) {
              blobs.push({ sha256: checkedContent(o, labels[side]), content: o.content });
              bytes += o.size;
            }
            const { content: _content, ...meta } = o ?? ({} as StoredObject);
            out.push({ side, objectId: k.objectId, version: k.version, existed: Boolean(o), meta: o ? meta : null });
          }
          await work.putBlobs(blobs);
          yield* out;
        }
        ctx.heartbeat({ phase: 'snapshot', line: line + page.length });
      }
    })();
    const manifest = await work.writeLines(MANIFEST, entries);
    return { ...refOf(manifest), entries: manifest.lines, bytes };
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
