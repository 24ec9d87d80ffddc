import type { DriftEntry } from '../stores/diff.js';
import type { DualWriteRollbackParams } from '../../shared/schemas.js';
import type { DualWriteContext } from './context.js';
import { resumablePass } from './pass.js';
import { decide } from './decide.js';
import type { DualWriteRef, FileRef, RepairAction, RepairPlan } from './types.js';
import { refOf } from './work-store/index.js';

/** diff lines per page (a checkpoint and a heartbeat each) */
const PAGE = 5000;

interface PlanTotals {
  byClassAndAction: Record<string, number>;
  toA: number;
  toB: number;
  olderOverwrites: number;
  sample: RepairAction[];
}

/**
 * Applies the direction policy to every differing object: the repair plan file and its summary. Reads only the
 * diff (no store); resumable page by page, its totals carried in the heartbeat (see resumablePass).
 */
export async function planRepair(
  c: DualWriteContext,
  ref: DualWriteRef & { diff: FileRef; policy: DualWriteRollbackParams['policy'] },
): Promise<RepairPlan> {
  const target = await c.target(ref);
  const { dw } = target;
  const { file, state } = await resumablePass<DriftEntry, PlanTotals>({
    work: c.work(target, ref.runKey),
    phase: 'plan',
    input: ref.diff,
    output: 'repair-plan.jsonl',
    pageSize: PAGE,
    initial: () => ({ byClassAndAction: {}, toA: 0, toB: 0, olderOverwrites: 0, sample: [] }),
    page: (entries, totals) =>
      entries.map((e) => {
        const a = decide(e, ref.policy, dw.tieBreaker);
        const label = `${e.class}: ${a.action} ${a.action === 'copy' ? `${dw.labels[a.from]} → ${dw.labels[a.to]}` : `from ${dw.labels[a.to]}`}`;
        totals.byClassAndAction[label] = (totals.byClassAndAction[label] ?? 0) + 1;
        if (a.to === 'a') totals.toA++;
        else totals.toB++;
        if (a.olderOverwrite) totals.olderOverwrites++;
        if (totals.sample.length < 10) totals.sample.push(a);
        return a;
      }),
  });
  const critical =
    file.lines >= dw.severity.criticalCount || (dw.severity.criticalOnOlderOverwrite && state.olderOverwrites > 0);
  return {
    ...refOf(file),
    total: file.lines,
    ...state,
    severity: file.lines === 0 ? 'none' : critical ? 'critical' : 'warning',
  };
}
