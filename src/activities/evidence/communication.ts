import { HEALTH_VERIFIED, renderNotification, team } from '../../shared/communication.js';
import { formatRto, isRtoReport } from '../../workflows/sqlite/rto.js';
import { COMMUNICATION_HOOKS, type CommunicationHook } from './communication-hooks.js';
import type { EvidenceFacts } from './document.js';
import { startedInput, type HistoryJson } from './history.js';
import {
  approvers,
  changeState,
  figures,
  outcomeText,
  planChangeLines,
  str,
  undoLines,
  type ChangeState,
} from './run-facts.js';

/**
 * The seed's communication template ("Post-Rollback Communication Template") filled from one run's facts, for any
 * runbook: the plan (and approved stages) as the action, the runbook's own numbers from `extra` as the impact,
 * what was undone, the plan's changes as they stand now, who approved. A runbook with a natural "action taken" or
 * "current state" adds a hook (communication-hooks.ts); nothing here is specific to one runbook.
 * `extra` names it reads: severity, servicesAffected, dataLoss, rto, incidentTicket (and every number: figures());
 * the incident ticket otherwise comes from the run's input in its history (context).
 */
/** What the run did and what stands after it: the communication's "Action Taken" and "Current State". */
export function runSummary(f: EvidenceFacts): { action: string; currentState: string[]; state: ChangeState } {
  const hook: CommunicationHook = COMMUNICATION_HOOKS[f.runbook] ?? {};
  const state = hook.state?.(f) ?? changeState(f);
  const planned =
    (f.stages ?? [])
      .filter((s) => s.status === 'approved' || s.status === 'automatic')
      .map((s) => s.plan.summary)
      .join('; ') ||
    f.plan?.summary ||
    f.steps
      .filter((s) => s.status === 'succeeded' || s.status === 'compensated')
      .map((s) => s.name)
      .join(' → ');
  const action = hook.action?.(f) ?? (planned || 'none');
  return {
    action:
      state === 'none' && f.outcome !== 'succeeded'
        ? `None (${f.dryRun ? 'dry run' : String(f.outcome ?? 'not yet')}); planned: ${action}`
        : action,
    currentState: hook.currentState?.(f, state) ?? planChangeLines(f),
    state,
  };
}

/** What the evidence does not hold but the run's history does (the CLI reads it from the start event's input). */
export interface CommunicationContext {
  incidentTicket?: string;
}

/** The context from a run's history: the incident ticket it was started with. */
export function communicationContext(history: HistoryJson): CommunicationContext {
  const ticket = startedInput(history)?.incidentTicket;
  return typeof ticket === 'string' && ticket ? { incidentTicket: ticket } : {};
}

export function renderCommunication(f: EvidenceFacts, context: CommunicationContext = {}): string {
  const hook: CommunicationHook = COMMUNICATION_HOOKS[f.runbook] ?? {};
  const extra = f.extra ?? {};
  const { action, currentState, state } = runSummary(f);
  const services = Array.isArray(extra.servicesAffected) ? extra.servicesAffected.map(String) : [];
  const measured = figures(extra);
  const impact = [
    ...(hook.impact?.(f, state) ?? []),
    ...(services.length ? [`Services affected: ${services.join(', ')}`] : []),
    ...(str(extra.severity) ? [`Severity: ${str(extra.severity)}`] : []),
    ...(str(extra.dataLoss) ? [`Data loss: ${str(extra.dataLoss)}`] : []),
    ...(isRtoReport(extra.rto) ? [formatRto(extra.rto)] : []),
    `User-facing impact: ${userImpact(f, state)}`,
    ...(measured.length ? ['Measured by the run:', ...measured.map((m) => `  ${m}`)] : []),
  ];
  return renderNotification({
    title: hook.title ?? `Runbook Notification: ${f.runbook}`,
    date: f.endedAt ?? f.startedAt,
    environment: f.environment,
    target: f.target,
    action,
    outcome: f.outcome === 'succeeded' ? undefined : outcomeText(f),
    reason: f.reason,
    impact,
    undone: undoLines(f),
    currentState,
    nextSteps: (state === 'applied' && hook.nextSteps) || nextSteps(f, state),
    team: team(f.requester, approvers(f)),
    incidentTicket: str(extra.incidentTicket) ?? context.incidentTicket,
    workflowId: f.workflowId,
  });
}

function userImpact(f: EvidenceFacts, state: ChangeState): string {
  const health = f.steps.find((s) => /health/i.test(s.name) && s.status === 'succeeded');
  if (state === 'none') return f.outcome === 'succeeded' ? 'None expected (the run changed nothing)' : 'None: nothing was changed';
  if (f.outcome === 'succeeded')
    return health ? HEALTH_VERIFIED : 'Not measured by the run';
  if (state === 'undone') return 'Possible while the change was in effect; it was undone';
  return `Possible: the run ended ${String(f.outcome ?? 'running').toUpperCase()} with its change ${state === 'kept' ? 'left in place' : 'in an unknown state'}`;
}

function nextSteps(f: EvidenceFacts, state: ChangeState): string[] {
  const postmortem = `Write the post-mortem: runbook report ${f.workflowId} --postmortem`;
  if (f.outcome === undefined || f.outcome === null) return [`Follow the run: runbook status ${f.workflowId}`];
  if (state === 'uncertain')
    return ['Check the state the failed undo left (see Undone) and put it right by hand', 'Investigate root cause', postmortem];
  if (state === 'kept')
    return ['Take over: the change was left in place on purpose (see Undone)', 'Investigate root cause', postmortem];
  if (f.dryRun) return ['Review the plan above', `Run ${f.runbook} again without the dry run when it is right`];
  if (state === 'none' || state === 'undone')
    return ['Investigate why the run did not complete', 'Decide whether to run it again', postmortem];
  return ['Investigate root cause', 'Fix identified issue', 'Re-test in staging', postmortem];
}
