import type { DriftEntry } from '../stores/diff.js';
import { keyString } from '../stores/fingerprint.js';
import type { ObjectMeta } from '../stores/types.js';
import { lineHeartbeat, type DualWriteContext } from './context.js';
import type { DualWriteRef, FileRef } from './types.js';
import { readLines, refOf } from './work-store/index.js';

const side = (m?: ObjectMeta) =>
  m
    ? {
        sha256: m.sha256,
        size: m.size,
        createdAt: new Date(m.createdAt).toISOString(),
        updatedAt: new Date(m.updatedAt).toISOString(),
      }
    : null;

/**
 * Per differing object: both sides' hash, size and timestamps, as a report file plus a sample. Reads only the
 * diff (no store); heartbeats `{ phase: 'isolate', line }`. A retry writes the report again from the start: it is
 * one pass over a work file, and its output replaces the earlier attempt's whole.
 */
export async function isolateDrift(
  c: DualWriteContext,
  ref: DualWriteRef & { diff: FileRef },
): Promise<FileRef & { sample: string[] }> {
  const target = await c.target(ref);
  const { labels } = target.dw;
  const work = c.work(target, ref.runKey);
  const diff = await readLines<DriftEntry>(work, ref.diff);
  const beat = lineHeartbeat('isolate');
  const sample: string[] = [];
  const rows = (async function* () {
    let line = 0;
    for await (const e of diff) {
      if (sample.length < 10)
        sample.push(
          `${keyString(e)} ${e.class}: ${labels.a} ${e.a ? `${e.a.sha256.slice(0, 12)} ${e.a.size}B` : 'missing'} | ${labels.b} ${e.b ? `${e.b.sha256.slice(0, 12)} ${e.b.size}B` : 'missing'}`,
        );
      yield { objectId: e.objectId, version: e.version, class: e.class, [labels.a]: side(e.a), [labels.b]: side(e.b) };
      beat(++line);
    }
  })();
  const file = await work.writeLines('isolation-report.jsonl', rows);
  return { ...refOf(file), sample };
}
