import {
  FLAG_ACTIONS,
  FLAG_IMPACT,
  FLAG_NEXT_STEPS,
  FLAG_TITLE,
  type CommunicationFacts,
} from '../../shared/communication.js';
import type { EvidenceFacts } from './document.js';
import { obj, planChangeLines, stepChangeLines, str, type ChangeState } from './run-facts.js';

/**
 * Per-runbook parts of the communication, for runbooks with a natural "action taken" or "current state". Each reads
 * only what its runbook recorded (plan, `extra`); a missing value falls back to the generic rendering.
 */
export interface CommunicationHook {
  title?: string;
  action?: (f: EvidenceFacts) => string | undefined;
  /** lines before the generic impact lines */
  impact?: (f: EvidenceFacts, state: ChangeState) => string[];
  /** replaces the plan's changes as the current state: only what the run did, never a plan item it did not reach */
  currentState?: (f: EvidenceFacts, state: ChangeState) => string[] | undefined;
  /** whether the run's change is in effect, when its own steps do not say (a chain of child runs) */
  state?: (f: EvidenceFacts) => ChangeState | undefined;
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

/** the ladder's levels that change the configuration, with the step that makes the change */
const LADDER_CHANGES = [
  [2, 'level 2 restore last known good'],
  [3, 'level 3 set emergency configuration'],
] as const;

/** What happened at one level the ladder reached: skipped, ran (healthy or not), or stopped at its approval. */
function levelOutcome(f: EvidenceFacts, l: Record<string, unknown>): string {
  if (str(l.skipped)) return `skipped (${str(l.skipped)})`;
  const approval = str(l.approval) ? ` (${str(l.approval)})` : '';
  if (typeof l.healthy === 'boolean') return `ran${approval}, ${l.healthy ? 'healthy after it' : 'still unhealthy'}`;
  const ended = String(f.outcome ?? 'running').toUpperCase();
  if (approval) return `started${approval}; the run ended ${ended} before its health check`;
  const stage = (f.stages ?? []).find((x) => x.stage === `level ${String(l.level)} approval`);
  return stage?.status === 'rejected'
    ? 'not run (rejected at its approval)'
    : `not run (the run ended ${ended} at its approval)`;
}

/** A level's configuration changes as its own approval stage planned them (else the ladder plan's for that level). */
function levelChanges(f: EvidenceFacts, level: number): Array<{ item: string; from: string | null; to: string | null }> {
  const prefix = `level ${level}: `;
  const changes =
    (f.stages ?? []).find((x) => x.stage === `level ${level} approval`)?.plan.changes ??
    (f.plan?.changes ?? []).filter((c) => c.item.startsWith(prefix));
  return changes.map((c) => ({ ...c, item: prefix + c.item.replace(/^level \d+: /, '') }));
}

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
  // the service as the ladder left it, each level it reached, and the changes of the levels that made one
  currentState: (f) => {
    const ladder = obj(f.extra?.ladder);
    const outcome = str(ladder?.outcome);
    if (!ladder || !outcome) return undefined;
    const escalated = Array.isArray(ladder.escalatedTo) ? ladder.escalatedTo.map(String) : [];
    const levels = (Array.isArray(ladder.levels) ? ladder.levels : []).map(obj).filter((l) => l !== undefined);
    const finished = typeof ladder.healthyAfter === 'number' || escalated.length > 0;
    return [
      `Service: ${finished ? outcome : `not made healthy by the ladder (the run ended ${String(f.outcome ?? 'running').toUpperCase()})`}`,
      ...(escalated.length ? [`Escalated to: ${escalated.join(', ')}`] : []),
      ...levels.map((l) => `Level ${String(l.level)} ${str(l.action) ?? ''}: ${levelOutcome(f, l)}`),
      ...LADDER_CHANGES.flatMap(([level, step]) => stepChangeLines(f, step, levelChanges(f, level))),
    ];
  },
};

/** job-replay: where the replayed jobs ended */
const jobReplay: CommunicationHook = {
  currentState: (f) => {
    const replay = obj(f.extra?.replay);
    const drain = obj(f.extra?.drain);
    if (!replay) return undefined;
    const override = (f.plan?.changes ?? []).filter((c) => !/ jobs$/.test(c.item));
    const restored = f.steps.some((x) => x.name === 'restore backend' && x.status === 'succeeded');
    const n = (o: Record<string, unknown> | undefined, k: string): string => String(o?.[k] ?? '?');
    return [
      `Jobs requeued: ${n(replay, 'requeued')} (already done: ${n(replay, 'already')}, vanished: ${n(replay, 'vanished')}, moved: ${n(replay, 'moved')})`,
      ...(drain
        ? [
            `After the replay: ${n(drain, 'completed')} completed, ${n(drain, 'failed')} failed, ${n(drain, 'pending')} pending${drain.drained === false ? ' (not drained)' : ''}`,
          ]
        : []),
      // the backend override (the plan's other change): restored after the replay, or as its step left it
      ...(restored
        ? override.map((c) => `${c.item}: ${c.from ?? '(unset)'} (${c.to ?? '(unset)'} during the replay, then restored)`)
        : stepChangeLines(f, 'override backend', override)),
    ];
  },
};

/** output-recovery: the replay as its child run ended, beside the outputs moved */
const outputRecovery: CommunicationHook = {
  currentState: (f) => {
    const replay = obj(f.extra?.replay);
    const lines = planChangeLines(f);
    return (f.plan?.changes ?? []).map((c, i) =>
      / jobs$/.test(c.item)
        ? `${c.item}: ${replay ? `replayed by ${str(replay.workflowId) ?? '?'} (${str(replay.outcome) ?? 'not finished'})` : `${c.from ?? '(unset)'} (not replayed)`}`
        : lines[i]!,
    );
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

/** triage: each child run of the chain as it ended, and the ones never started */
interface ChildFacts {
  run?: string;
  workflowId: string;
  runbook: string;
  target: string;
  outcome: string;
  approval?: string;
  approvedBy?: string[];
}
const childrenOf = (f: EvidenceFacts): ChildFacts[] =>
  (Array.isArray(f.extra?.children) ? f.extra.children : []).filter(
    (c): c is ChildFacts => typeof obj(c)?.workflowId === 'string',
  );
const chainOf = (f: EvidenceFacts): Array<{ runbook?: string; target?: string }> =>
  Array.isArray(f.plan?.details?.chain) ? f.plan.details.chain.map((c) => obj(c) ?? {}) : [];

const triage: CommunicationHook = {
  // the children's changes: in effect when one succeeded (kept when a later one stopped the chain)
  state: (f) => {
    const kids = childrenOf(f);
    if (f.dryRun || !kids.length) return undefined;
    if (kids.some((k) => k.outcome === 'compensation_failed')) return 'uncertain';
    if (!kids.some((k) => k.outcome === 'succeeded')) return 'none';
    return f.outcome === 'succeeded' ? 'applied' : 'kept';
  },
  action: (f) => {
    const n = chainOf(f).length;
    const kids = childrenOf(f);
    // no child's change in effect: "None (…); planned: <the chain>", the children's ends under Current State
    return kids.some((k) => k.outcome === 'succeeded')
      ? kids.map((k, i) => `run ${k.run ?? `${i + 1}/${n}`} ${k.runbook} on ${k.target}: ${k.outcome}`).join(' → ')
      : undefined;
  },
  currentState: (f) => {
    const chain = chainOf(f);
    const kids = childrenOf(f);
    if (!chain.length) return undefined;
    const approval = (k: ChildFacts) =>
      k.approval === 'own' ? ` (its own approval${k.approvedBy?.length ? ` by ${k.approvedBy.join(', ')}` : ''})` : '';
    return [
      ...kids.map(
        (k, i) =>
          `run ${k.run ?? `${i + 1}/${chain.length}`} ${k.runbook} on ${k.target}: ${k.outcome.toUpperCase()}${approval(k)} — ${k.workflowId}`,
      ),
      ...chain
        .slice(kids.length)
        .map((c, i) => `run ${kids.length + i + 1}/${chain.length} ${c.runbook ?? '?'} on ${c.target ?? '?'}: not started`),
      ...(kids.length ? ['What each child changed: runbook report <its workflow id> --communication'] : []),
    ];
  },
};

export const COMMUNICATION_HOOKS: Record<string, CommunicationHook> = {
  'feature-flag-rollback': featureFlagRollback,
  'backend-phase-switch': backendPhaseSwitch,
  'emergency-ladder': emergencyLadder,
  'job-replay': jobReplay,
  'dual-write-check': dualWriteCheck,
  'output-recovery': outputRecovery,
  triage,
};
