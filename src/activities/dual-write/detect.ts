import { Context } from '@temporalio/activity';
import { Runtime } from '@temporalio/worker';
import { diffStores, emptyCounts, type DiffStats } from '../stores/diff.js';
import type { DualWriteContext } from './context.js';
import type { DriftReport, DualWriteRef } from './types.js';
import { refOf, writeLines } from './work-store/index.js';

// the runtime's meter, not the activity's: one series per target whether detection or verification set it
export const inconsistencyGauge = () =>
  Runtime.instance().metricMeter.createGauge(
    'dual_write_inconsistency_detected',
    'int',
    'objects',
    'Objects that differ between the two sides of a dual-write pair',
  );

/**
 * Streams the diff of the two sides into the work file `<phase>-diff.jsonl`, heartbeating the rows compared.
 * Read-only: both stores are opened without creating or migrating anything. A retry compares again from the
 * start (the comparison keeps no state worth resuming: it reads only what differs).
 */
export async function detect(
  c: DualWriteContext,
  ref: DualWriteRef & { phase: string },
  /** carried in every heartbeat (with the phase and the rows compared), for the caller's retry */
  carry: Record<string, unknown> = {},
): Promise<DriftReport> {
  const target = await c.target(ref);
  const { dw } = target;
  const work = c.work(target, ref.runKey);
  return c.withStores(target, { readOnly: true }, async (stores) => {
    const started = Date.now();
    const counts = emptyCounts();
    let stats: DiffStats | undefined;
    const ctx = Context.current();
    const entries = (async function* () {
      for await (const entry of diffStores(
        stores.a,
        stores.b,
        {},
        {
          mergeOnly: dw.detection.mode === 'merge',
          pageSize: dw.detection.pageSize,
          segmentRows: dw.detection.segmentRows,
          windowSegments: dw.detection.windowSegments,
          listAbove: dw.detection.listAbove,
          onProgress: (s) => (
            (stats = s),
            ctx.heartbeat({ ...carry, phase: ref.phase, rowsA: s.rowsA, rowsB: s.rowsB })
          ),
        },
      )) {
        counts[entry.class]++;
        yield entry;
      }
    })();
    const file = await writeLines(work, `${ref.phase}-diff.jsonl`, entries);
    const total = file.lines;
    inconsistencyGauge().set(total, { environment: ref.environment, target: ref.target });
    c.log.info(
      { target: `${ref.environment}/${ref.target}`, phase: ref.phase, total, counts },
      'dual-write drift detected',
    );
    return { ...refOf(file), counts, total, stats: stats!, durationMs: Date.now() - started };
  });
}
