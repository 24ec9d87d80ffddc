import type { DriftEntry } from '../stores/diff.js';
import { keyString } from '../stores/fingerprint.js';
import type { ObjectMeta } from '../stores/types.js';
import type { DualWriteContext } from './context.js';
import { resumablePass } from './pass.js';
import type { DualWriteRef, FileRef } from './types.js';
import { refOf } from './work-store/index.js';

const side = (m?: ObjectMeta) =>
  m
    ? {
        sha256: m.sha256,
        size: m.size,
        createdAt: new Date(m.createdAt).toISOString(),
        updatedAt: new Date(m.updatedAt).toISOString(),
      }
    : null;

/** diff lines per page (a checkpoint and a heartbeat each) */
const PAGE = 5000;

/**
 * Per differing object: both sides' hash, size and timestamps, as a report file plus a sample. Reads only the
 * diff (no store); resumable page by page (see resumablePass).
 */
export async function isolateDrift(
  c: DualWriteContext,
  ref: DualWriteRef & { diff: FileRef },
): Promise<FileRef & { sample: string[] }> {
  const target = await c.target(ref);
  const { labels } = target.dw;
  const { file, state } = await resumablePass<DriftEntry, { sample: string[] }>({
    work: c.work(target, ref.runKey),
    phase: 'isolate',
    input: ref.diff,
    output: 'isolation-report.jsonl',
    pageSize: PAGE,
    initial: () => ({ sample: [] }),
    page: (entries, { sample }) =>
      entries.map((e) => {
        if (sample.length < 10)
          sample.push(
            `${keyString(e)} ${e.class}: ${labels.a} ${e.a ? `${e.a.sha256.slice(0, 12)} ${e.a.size}B` : 'missing'} | ${labels.b} ${e.b ? `${e.b.sha256.slice(0, 12)} ${e.b.size}B` : 'missing'}`,
          );
        return {
          objectId: e.objectId,
          version: e.version,
          class: e.class,
          [labels.a]: side(e.a),
          [labels.b]: side(e.b),
        };
      }),
  });
  return { ...refOf(file), sample: state.sample };
}
