import type { DriftEntry } from '../stores/diff.js';
import type { DualWriteRollbackParams } from '../../shared/schemas.js';
import { lineHeartbeat, type DualWriteContext } from './context.js';
import { decide } from './decide.js';
import type { DualWriteRef, FileRef, RepairAction, RepairPlan } from './types.js';
import { readLines, refOf } from './work-store/index.js';

/**
 * Applies the direction policy to every differing object: the repair plan file and its summary. Reads only the
 * diff (no store); heartbeats `{ phase: 'plan', line }`; a retry plans again from the start (see isolateDrift).
 */
export async function planRepair(
  c: DualWriteContext,
  ref: DualWriteRef & { diff: FileRef; policy: DualWriteRollbackParams['policy'] },
): Promise<RepairPlan> {
  const target = await c.target(ref);
  const { dw } = target;
  const work = c.work(target, ref.runKey);
  const diff = await readLines<DriftEntry>(work, ref.diff);
  const beat = lineHeartbeat('plan');
  const byClassAndAction: Record<string, number> = {};
  const sample: RepairAction[] = [];
  let toA = 0;
  let toB = 0;
  let olderOverwrites = 0;
  const rows = (async function* () {
    let line = 0;
    for await (const e of diff) {
      const a = decide(e, ref.policy, dw.tieBreaker);
      const label = `${e.class}: ${a.action} ${a.action === 'copy' ? `${dw.labels[a.from]} → ${dw.labels[a.to]}` : `from ${dw.labels[a.to]}`}`;
      byClassAndAction[label] = (byClassAndAction[label] ?? 0) + 1;
      if (a.to === 'a') toA++;
      else toB++;
      if (a.olderOverwrite) olderOverwrites++;
      if (sample.length < 10) sample.push(a);
      yield a;
      beat(++line);
    }
  })();
  const file = await work.writeLines('repair-plan.jsonl', rows);
  const critical =
    file.lines >= dw.severity.criticalCount || (dw.severity.criticalOnOlderOverwrite && olderOverwrites > 0);
  return {
    ...refOf(file),
    total: file.lines,
    byClassAndAction,
    toA,
    toB,
    olderOverwrites,
    severity: file.lines === 0 ? 'none' : critical ? 'critical' : 'warning',
    sample,
  };
}
