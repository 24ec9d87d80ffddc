import type { FeatureFlagRollbackParams } from './schemas.js';

/**
 * The seed runbook's "Post-Rollback Communication Template" (feature-flag-dual-write-rollback.md), as fields. The
 * feature-flag runbook fills it while it runs (rollbackNotification); `runbook report <id> --communication` fills it
 * for any runbook from its evidence (src/activities/evidence/communication.ts). Lines only some runs have
 * (outcome, undone, figures) are printed only when given, so a run without them reads exactly like the template.
 */
export interface Notification {
  title: string;
  /** ISO time; printed to the minute */
  date: string;
  environment: string;
  target: string;
  action: string;
  /** how the run ended, when it is not plain success */
  outcome?: string;
  reason: string;
  impact: string[];
  /** what was undone (or left in place on purpose) */
  undone?: string[];
  currentState: string[];
  nextSteps: string[];
  team: string;
  incidentTicket?: string;
  workflowId: string;
}

/** a line starting with two spaces is a sub-item of the line before */
const bullets = (lines: string[]): string[] =>
  lines.map((l) => (l.startsWith('  ') ? `  - ${l.trimStart()}` : `- ${l}`));

export function renderNotification(n: Notification): string {
  return [
    `### ${n.title}`,
    '',
    `**Date:** ${n.date.slice(0, 16).replace('T', ' ')} UTC`,
    `**Environment:** ${n.environment} (target ${n.target})`,
    `**Action Taken:** ${n.action}`,
    ...(n.outcome ? [`**Outcome:** ${n.outcome}`] : []),
    '',
    '**Reason:**',
    n.reason,
    '',
    '**Impact:**',
    ...bullets(n.impact),
    ...(n.undone?.length ? ['', '**Undone:**', ...bullets(n.undone)] : []),
    '',
    '**Current State:**',
    ...(n.currentState.length ? bullets(n.currentState) : ['- (nothing the run measured)']),
    '',
    '**Next Steps:**',
    ...n.nextSteps.map((s, i) => `${i + 1}. ${s}`),
    '',
    `**Team:** ${n.team}`,
    `**Incident Ticket:** ${n.incidentTicket ?? 'n/a'}`,
    `**Workflow:** ${n.workflowId}`,
  ].join('\n');
}

/** What the feature-flag runbook knows when it notifies. */
export interface CommunicationFacts {
  date: string;
  environment: string;
  target: string;
  mode: FeatureFlagRollbackParams['mode'];
  reason: string;
  flags: Array<{ name: string; value: string | null }>;
  requester: string;
  approvedBy: string[];
  incidentTicket?: string;
  workflowId: string;
}

export const FLAG_TITLE = 'Dual-Write Rollback Notification';

export const FLAG_ACTIONS: Record<CommunicationFacts['mode'], string> = {
  'disable-dual-write': 'Disabled dual-write',
  'disable-strict-mode': 'Disabled strict mode (dual-write failures are logged, not raised)',
  'block-legacy-writes': 'Blocked legacy writes and disabled dual-write',
  'enable-dual-write': 'Re-enabled dual-write (soaked: healthy, dual writes resumed)',
};

/** vNext operations, legacy operations */
export const FLAG_IMPACT: Record<CommunicationFacts['mode'], [string, string]> = {
  'disable-dual-write': ['Unaffected', 'Not syncing'],
  'disable-strict-mode': ['Unaffected', 'Unaffected'],
  'block-legacy-writes': ['Unaffected', 'Not syncing (writes blocked)'],
  'enable-dual-write': ['Unaffected', 'Syncing again'],
};

export const FLAG_NEXT_STEPS = [
  'Investigate root cause',
  'Fix identified issue',
  'Re-test in staging',
  'Re-enable dual-write with monitoring',
];

export const HEALTH_VERIFIED = 'None expected (service health verified after the change)';

export const team = (requester: string, approvedBy: string[]): string =>
  `${requester} (approved by ${approvedBy.join(', ') || 'n/a'})`;

export function rollbackNotification(f: CommunicationFacts): string {
  const [vnext, legacy] = FLAG_IMPACT[f.mode];
  return renderNotification({
    title: FLAG_TITLE,
    date: f.date,
    environment: f.environment,
    target: f.target,
    action: FLAG_ACTIONS[f.mode],
    reason: f.reason,
    impact: [`vNext operations: ${vnext}`, `Legacy operations: ${legacy}`, `User-facing impact: ${HEALTH_VERIFIED}`],
    currentState: f.flags.map((flag) => `${flag.name}: ${flag.value ?? '(unset)'}`),
    nextSteps: FLAG_NEXT_STEPS,
    team: team(f.requester, f.approvedBy),
    incidentTicket: f.incidentTicket,
    workflowId: f.workflowId,
  });
}
