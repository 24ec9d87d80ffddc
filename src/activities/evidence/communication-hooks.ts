import {
  FLAG_ACTIONS,
  FLAG_IMPACT,
  FLAG_NEXT_STEPS,
  FLAG_TITLE,
  type CommunicationFacts,
} from '../../shared/communication.js';
import type { EvidenceFacts } from './document.js';
import { obj, planChangeLines, str, type ChangeState } from './run-facts.js';

/**
 * Per-runbook parts of the communication, for runbooks with a natural "action taken" or "current state". Each reads
 * only what its runbook recorded (plan, `extra`); a missing value falls back to the generic rendering.
 */
export interface CommunicationHook {
  title?: string;
  action?: (f: EvidenceFacts) => string | undefined;
  /** lines before the generic impact lines */
  impact?: (f: EvidenceFacts, state: ChangeState) => string[];
  /** replaces the plan's changes as the current state */
  currentState?: (f: EvidenceFacts, state: ChangeState) => string[] | undefined;
  /** when the change is in effect */
  nextSteps?: string[];
}

type Mode = CommunicationFacts['mode'];
const flagMode = (f: EvidenceFacts): Mode | undefined => {
  const mode = str(f.extra?.mode) ?? str(f.plan?.details?.mode);
  return mode && mode in FLAG_ACTIONS ? (mode as Mode) : undefined;
};

const featureFlagRollback: CommunicationHook = {
  title: FLAG_TITLE,
  action: (f) => {
    const mode = flagMode(f);
    return mode && FLAG_ACTIONS[mode];
  },
  impact: (f, state) => {
    const mode = flagMode(f);
    const [vnext, legacy] =
      state === 'uncertain'
        ? ['Unknown (an undo failed: check the flags)', 'Unknown (an undo failed: check the flags)']
        : mode && (state === 'applied' || state === 'kept')
          ? FLAG_IMPACT[mode]
          : ['Unaffected', 'Unaffected'];
    return [`vNext operations: ${vnext}`, `Legacy operations: ${legacy}`];
  },
  // the flags as read when the run notified; else the plan's changes over the flags read before the change
  currentState: (f) => {
    const after = obj(f.extra?.flags);
    if (after) return Object.entries(after).map(([name, v]) => `${name}: ${str(v) ?? '(unset)'}`);
    const lines = planChangeLines(f);
    const changed = new Map((f.plan?.changes ?? []).map((c, i) => [c.item, lines[i]]));
    const before = Object.entries(obj(f.plan?.details?.current) ?? {});
    const unchanged = before.map(([name, v]) => changed.get(name) ?? `${name}: ${str(v) ?? '(unset)'}`);
    return [...unchanged, ...lines.filter((l) => !before.some(([name]) => l.startsWith(`${name}: `)))];
  },
  nextSteps: FLAG_NEXT_STEPS,
};

/** backend-phase-switch: the phase the configuration moved from and to, or rolled back to */
const backendPhaseSwitch: CommunicationHook = {
  action: (f) => {
    const e = f.extra ?? {};
    const [from, to, back] = [str(e.from), str(e.to), str(e.rolledBackTo)];
    const path = Array.isArray(e.steps)
      ? e.steps.map((s) => str(obj(s)?.phase)).filter(Boolean).join(' → ')
      : '';
    if (back && str(e.checkpoint)) return `Rolled back to ${back} (from ${from ?? '?'})`;
    if (back) return `Tried ${from ?? '?'} → ${to ?? '?'}${path ? ` (${path})` : ''}; rolled back to ${back}`;
    if (from && to) return `Moved ${from} → ${to}${path ? ` (${path})` : ''}`;
    return undefined;
  },
  currentState: (f, state) => {
    const e = f.extra ?? {};
    const phase = str(e.rolledBackTo) ?? (state === 'applied' ? str(e.to) : str(e.from));
    if (!phase) return undefined;
    const steps = Array.isArray(e.steps) ? e.steps.map(obj).filter((s) => s !== undefined) : [];
    const lkg = obj(e.lastKnownGood);
    return [
      `Phase: ${phase}`,
      ...steps.map((s) => `${str(s.phase) ?? '?'}: ${str(s.result) ?? 'no result'}`),
      ...(lkg ? [`Last known good configuration saved: ${str(lkg.file) ?? '?'}`] : []),
    ];
  },
};

/** emergency-ladder: the levels climbed and where the service ended */
const emergencyLadder: CommunicationHook = {
  action: (f) => {
    const levels = Array.isArray(obj(f.extra?.ladder)?.levels) ? (obj(f.extra?.ladder)!.levels as unknown[]) : [];
    const climbed = levels
      .map(obj)
      .filter((l) => l && (typeof l.healthy === 'boolean' || str(l.skipped)))
      .map((l) =>
        str(l!.skipped)
          ? `L${String(l!.level)} ${str(l!.action)} skipped (${str(l!.skipped)})`
          : `L${String(l!.level)} ${str(l!.action)} (${l!.healthy ? 'healthy after it' : 'still unhealthy'})`,
      );
    return climbed.length ? climbed.join(' → ') : undefined;
  },
  currentState: (f) => {
    const ladder = obj(f.extra?.ladder);
    const outcome = str(ladder?.outcome);
    if (!outcome) return undefined;
    const escalated = Array.isArray(ladder?.escalatedTo) ? ladder.escalatedTo.map(String) : [];
    return [
      `Service: ${outcome}`,
      ...(escalated.length ? [`Escalated to: ${escalated.join(', ')}`] : []),
      ...planChangeLines(f),
    ];
  },
};

/** job-replay: where the replayed jobs ended */
const jobReplay: CommunicationHook = {
  currentState: (f) => {
    const replay = obj(f.extra?.replay);
    const drain = obj(f.extra?.drain);
    if (!replay) return undefined;
    const n = (o: Record<string, unknown> | undefined, k: string): string => String(o?.[k] ?? '?');
    return [
      `Jobs requeued: ${n(replay, 'requeued')} (already done: ${n(replay, 'already')}, vanished: ${n(replay, 'vanished')}, moved: ${n(replay, 'moved')})`,
      ...(drain
        ? [
            `After the replay: ${n(drain, 'completed')} completed, ${n(drain, 'failed')} failed, ${n(drain, 'pending')} pending${drain.drained === false ? ' (not drained)' : ''}`,
          ]
        : []),
      ...planChangeLines(f),
    ];
  },
};

/** dual-write-check (detection only): the differences it found, against the check before */
const dualWriteCheck: CommunicationHook = {
  currentState: (f) => {
    const detection = obj(f.extra?.detection);
    if (typeof detection?.total !== 'number') return undefined;
    const previous = obj(detection.previous);
    return [
      `Differences between the stores: ${detection.total}${str(detection.severity) ? ` (${str(detection.severity)})` : ''}`,
      ...(typeof previous?.total === 'number'
        ? [`At the check before (${str(previous.checkedAt) ?? '?'}): ${previous.total}`]
        : []),
    ];
  },
};

export const COMMUNICATION_HOOKS: Record<string, CommunicationHook> = {
  'feature-flag-rollback': featureFlagRollback,
  'backend-phase-switch': backendPhaseSwitch,
  'emergency-ladder': emergencyLadder,
  'job-replay': jobReplay,
  'dual-write-check': dualWriteCheck,
};
