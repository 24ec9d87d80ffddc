import { formatDuration } from '../../shared/duration.js';
import type { PlanChange } from '../../shared/types.js';
import type { EvidenceFacts } from './document.js';

/**
 * What the communication and the post-mortem both read from a run's facts (evidence, or status while it runs):
 * who approved, what was undone, whether the change is in effect, and the numbers a runbook put in `extra`.
 */

export const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);

export function obj(v: unknown): Record<string, unknown> | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** Accepted approvers of the run's gate and of every approval stage, in order, each once (with their stages). */
export function approvers(f: EvidenceFacts): string[] {
  const byName = new Map<string, string[]>();
  for (const a of f.approvals) {
    if (a.kind !== 'approve' || !a.accepted) continue;
    const stages = byName.get(a.by) ?? [];
    if (a.stage) stages.push(a.stage);
    byName.set(a.by, stages);
  }
  return [...[...byName].map(([by, stages]) => (stages.length ? `${by} (${stages.join(', ')})` : by)), ...automatic(f)];
}

/** Approval stages the policy passed without people, as one entry (none: no such stage). */
export function automatic(f: EvidenceFacts): string[] {
  const stages = (f.stages ?? []).filter((s) => s.status === 'automatic').map((s) => s.stage);
  return stages.length ? [`the automatic policy (${stages.join(', ')})`] : [];
}

/**
 * Whether the run's change is in effect, from its destructive steps and their undo:
 * none (nothing changed), applied, undone (every change put back), kept (handed over with changes left in place on
 * purpose), uncertain (an undo failed).
 */
export type ChangeState = 'none' | 'applied' | 'undone' | 'kept' | 'uncertain';

export function changeState(f: EvidenceFacts): ChangeState {
  if (f.dryRun) return 'none';
  const changed = f.steps.filter((s) => s.destructive && (s.status === 'succeeded' || s.status === 'compensated'));
  if (f.compensations.some((c) => c.status === 'failed')) return 'uncertain';
  if (f.compensations.some((c) => c.status === 'kept')) return 'kept';
  if (!changed.length) return f.outcome === 'succeeded' ? 'applied' : 'none';
  return changed.every((s) => s.status === 'compensated') ? 'undone' : 'applied';
}

/** Each undo the run ran (or left on purpose), as a line. */
export function undoLines(f: EvidenceFacts): string[] {
  return f.compensations.map((c) =>
    c.status === 'kept'
      ? `${c.step}: left in place on purpose${c.reason ? ` (${c.reason})` : ''}`
      : `${c.step}: undo ${c.status}${c.error ? ` — ${c.error}` : ''}`,
  );
}

/** The plan's changes (every approved stage's too) as they stand after the run. */
export function planChangeLines(f: EvidenceFacts): string[] {
  const stages = (f.stages ?? []).filter((s) => s.status === 'approved');
  const changes = stages.length ? stages.flatMap((s) => s.plan.changes) : (f.plan?.changes ?? []);
  const state = changeState(f);
  const show = (v: string | null): string => v ?? '(unset)';
  return changes.map((c) => {
    if (state === 'applied') return `${c.item}: ${show(c.to)}`;
    if (state === 'none') return `${c.item}: ${show(c.from)} (unchanged)`;
    if (state === 'undone') return `${c.item}: ${show(c.from)} (change undone)`;
    if (state === 'kept') return `${c.item}: ${show(c.to)} (left in place on purpose; ${show(c.from)} before)`;
    return `${c.item}: unknown — ${show(c.from)} before, ${show(c.to)} planned; check it (an undo failed)`;
  });
}

/**
 * What one step did to the changes it makes, as they stand after the run: nothing when the step never ran (or failed
 * without an undo: it changed nothing), else applied, undone, left in place on purpose, or unknown (its undo
 * failed). For runbooks whose plan lists more than the run reaches (a ladder's later levels): only what ran.
 */
export function stepChangeLines(f: EvidenceFacts, step: string, changes: PlanChange[]): string[] {
  const record = f.steps.find((s) => s.name === step);
  const undo = f.compensations.find((c) => c.step === step);
  const show = (v: string | null): string => v ?? '(unset)';
  if (undo?.status === 'kept')
    return changes.map((c) => `${c.item}: ${show(c.to)} (left in place on purpose; ${show(c.from)} before)`);
  if (undo?.status === 'failed')
    return changes.map((c) => `${c.item}: unknown — ${show(c.from)} before, ${show(c.to)} planned; check it (an undo failed)`);
  if (undo) return changes.map((c) => `${c.item}: ${show(c.from)} (change undone)`);
  return record?.status === 'succeeded' ? changes.map((c) => `${c.item}: ${show(c.to)}`) : [];
}

/** `extra` keys other renderings show on their own line */
const SHOWN_APART = new Set(['severity', 'servicesAffected', 'dataLoss', 'rto', 'notification', 'incidentTicket']);
const MAX_FIGURE_LINES = 12;

/**
 * The numbers (and yes/no facts) a runbook put in `extra`, grouped by where they are:
 * `replay: requeued 60, already 0` — whatever the runbook recorded (counts, sizes, durations), none hard-coded.
 * Lists of names count their items; keys ending in `Ms` are durations.
 */
export function figures(extra: Record<string, unknown> | null | undefined): string[] {
  const groups = new Map<string, Array<{ key: string; value: string }>>();
  const add = (path: string, key: string, value: string): void => {
    groups.set(path, [...(groups.get(path) ?? []), { key, value }]);
  };
  const walk = (value: Record<string, unknown>, path: string, depth: number): void => {
    for (const [key, v] of Object.entries(value)) {
      if (!path && SHOWN_APART.has(key)) continue;
      if (typeof v === 'number')
        add(path, ...(/Ms$/.test(key) ? ([key.slice(0, -2), formatDuration(v)] as const) : ([key, v.toLocaleString('en-US')] as const)));
      else if (typeof v === 'boolean') add(path, key, v ? 'yes' : 'no');
      // a list of names counts; a list of records is the runbook's own detail (in the report)
      else if (Array.isArray(v)) {
        if (v.length && v.every((x) => typeof x === 'string')) add(path, key, String(v.length));
      } else if (obj(v) && depth < 4) walk(obj(v)!, path ? `${path}.${key}` : key, depth + 1);
    }
  };
  walk(extra ?? {}, '', 0);
  // siblings with one figure of the same name each (tables.a: rows 1, tables.b: rows 2) make one line: tables rows: a 1, b 2
  const lines: string[] = [];
  const merged = new Map<string, number>();
  for (const [path, items] of groups) {
    const cut = path.lastIndexOf('.');
    const sibling = (p: string, i: Array<{ key: string }>) =>
      i.length === 1 && i[0]!.key === items[0]!.key && p.lastIndexOf('.') === cut && p.slice(0, cut) === path.slice(0, cut);
    const siblings = cut > 0 && items.length === 1 ? [...groups].filter(([p, i]) => sibling(p, i)).length : 0;
    if (siblings < 2) {
      lines.push(`${path ? `${path}: ` : ''}${items.map((i) => `${i.key} ${i.value}`).join(', ')}`);
      continue;
    }
    const head = `${path.slice(0, cut)} ${items[0]!.key}: `;
    const item = `${path.slice(cut + 1)} ${items[0]!.value}`;
    const at = merged.get(head);
    if (at === undefined) merged.set(head, lines.push(head + item) - 1);
    else lines[at] += `, ${item}`;
  }
  return lines.length > MAX_FIGURE_LINES
    ? [...lines.slice(0, MAX_FIGURE_LINES), `… ${lines.length - MAX_FIGURE_LINES} more in the evidence (runbook report)`]
    : lines;
}

/** The run's end as words: SUCCEEDED, FAILED: error, ABORTED by …, RUNNING. */
export function outcomeText(f: EvidenceFacts): string {
  const outcome = String(f.outcome ?? 'running').toUpperCase();
  if (f.abort) return `${outcome} by ${f.abort.by} at ${f.abort.at}: ${f.abort.reason}`;
  return f.error ? `${outcome}: ${f.error}` : outcome;
}
