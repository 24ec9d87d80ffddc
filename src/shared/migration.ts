import { MIGRATION_PHASES, type MigrationPhase } from './schemas/migration.js';

// The phases of a backend migration as configuration values (docs/backend-migration.md, "Phases"): pure, used by
// workflows and activities alike.

/** key → value; null: not set */
export type MigrationValues = Record<string, string | null>;

export interface MigrationKeys {
  primary: string;
  dualWrite: string;
  cutoverPercent: string;
  phase?: string;
}

/** What phaseValues and phaseOf need of a target's `migration` section. */
export interface PhaseTarget {
  keys: MigrationKeys;
  backends: { old: string; new: string };
}

/** A phase as read from the configuration: a known one (with its percent), or `custom` with why. */
export type PhaseState = { phase: MigrationPhase; percent: number } | { phase: 'custom'; reason: string };

/** The key values of a phase (cut-over: at `percent`, 1–100; every other phase has 0). */
export function phaseValues(phase: MigrationPhase, percent: number | undefined, target: PhaseTarget): MigrationValues {
  const { keys, backends } = target;
  const p = phase === 'cut-over' ? (percent ?? 0) : 0;
  if (!Number.isInteger(p) || p < 0 || p > 100) throw new RangeError(`cut-over percent ${p} is not 0-100`);
  // cut-over at 0% routes nothing to the new backend: that is the dual-write phase
  if (phase === 'cut-over' && p === 0) phase = 'dual-write';
  const values: MigrationValues = {
    [keys.primary]: phase === 'new-only' ? backends.new : backends.old,
    [keys.dualWrite]: phase === 'dual-write' || phase === 'cut-over' ? 'true' : 'false',
    [keys.cutoverPercent]: String(p),
  };
  if (keys.phase) values[keys.phase] = phase;
  return values;
}

/** The migration keys a run reads and writes. */
export const migrationKeyNames = (keys: MigrationKeys): string[] =>
  [keys.primary, keys.dualWrite, keys.cutoverPercent, keys.phase].filter((k): k is string => k !== undefined);

const PERCENT = /^(0|[1-9][0-9]?|100)$/;

/** The phase the values describe; anything the phase table does not have is `custom`, with the reason. */
export function phaseOf(values: MigrationValues, target: PhaseTarget): PhaseState {
  const { keys, backends } = target;
  const primary = values[keys.primary] ?? null;
  const dual = values[keys.dualWrite]?.trim().toLowerCase() ?? null;
  const percentText = values[keys.cutoverPercent]?.trim() ?? null;
  const show = (k: string) => `${k}=${values[k] ?? '(unset)'}`;
  if (primary !== backends.old && primary !== backends.new)
    return { phase: 'custom', reason: `${show(keys.primary)} is neither ${backends.old} nor ${backends.new}` };
  if (dual !== 'true' && dual !== 'false')
    return { phase: 'custom', reason: `${show(keys.dualWrite)} is neither true nor false` };
  const percent = percentText === null ? 0 : PERCENT.test(percentText) ? Number(percentText) : NaN;
  if (Number.isNaN(percent)) return { phase: 'custom', reason: `${show(keys.cutoverPercent)} is not 0-100` };
  let phase: MigrationPhase | undefined;
  if (primary === backends.new) phase = dual === 'false' && percent === 0 ? 'new-only' : undefined;
  else if (dual === 'false') phase = percent === 0 ? 'primary-only' : undefined;
  else phase = percent === 0 ? 'dual-write' : 'cut-over';
  if (!phase)
    return {
      phase: 'custom',
      reason: `${[keys.primary, keys.dualWrite, keys.cutoverPercent].map(show).join(' ')} is no phase`,
    };
  const named = keys.phase ? (values[keys.phase] ?? null) : null;
  if (named !== null && named !== phase)
    return { phase: 'custom', reason: `${show(keys.phase!)} but the values are those of ${phase}` };
  return { phase, percent };
}

/** Forward order of the phases; cut-over steps by percent. */
export function phaseRank(state: { phase: MigrationPhase; percent: number }): number {
  return MIGRATION_PHASES.indexOf(state.phase) * 1000 + (state.phase === 'cut-over' ? state.percent : 0);
}

export const describePhase = (s: PhaseState): string =>
  s.phase === 'custom' ? `custom (${s.reason})` : s.phase === 'cut-over' ? `cut-over ${s.percent}%` : s.phase;

/** One step of a phase switch: the phase it moves to, and whether a soak follows (forward steps only). */
export interface PhaseStep {
  phase: MigrationPhase;
  percent: number;
  forward: boolean;
}

/**
 * The steps from `current` to `to` (at `percent` for cut-over). Forward: through dual-write, then the
 * environment's cutoverSteps above the current percent and below the asked one, then the asked phase — each one
 * a step with its soak. Backward: one step, straight to the asked phase (no soak). Empty when already there.
 */
export function planPhaseSteps(
  current: { phase: MigrationPhase; percent: number },
  to: { phase: MigrationPhase; percent: number },
  cutoverSteps: number[],
): PhaseStep[] {
  const target = to.phase === 'cut-over' && to.percent === 0 ? { phase: 'dual-write' as const, percent: 0 } : to;
  const from = phaseRank(current);
  const goal = phaseRank(target);
  if (goal === from) return [];
  if (goal < from) return [{ ...target, forward: false }];
  const path: PhaseStep[] = [];
  const add = (phase: MigrationPhase, percent: number) => {
    const rank = phaseRank({ phase, percent });
    if (rank > from && rank < goal) path.push({ phase, percent, forward: true });
  };
  add('dual-write', 0);
  for (const p of [...new Set(cutoverSteps)].sort((a, b) => a - b)) add('cut-over', p);
  path.push({ ...target, forward: true });
  return path;
}
