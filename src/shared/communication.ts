import type { FeatureFlagRollbackParams } from './schemas.js';

/** The seed runbook's "Post-Rollback Communication Template", filled in from the run. */
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

const ACTIONS: Record<CommunicationFacts['mode'], string> = {
  'disable-dual-write': 'Disabled dual-write',
  'disable-strict-mode': 'Disabled strict mode (dual-write failures are logged, not raised)',
  'block-legacy-writes': 'Blocked legacy writes and disabled dual-write',
  'enable-dual-write': 'Re-enabled dual-write (soaked: healthy, dual writes resumed)',
};

const IMPACT: Record<CommunicationFacts['mode'], [string, string]> = {
  'disable-dual-write': ['Unaffected', 'Not syncing'],
  'disable-strict-mode': ['Unaffected', 'Unaffected'],
  'block-legacy-writes': ['Unaffected', 'Not syncing (writes blocked)'],
  'enable-dual-write': ['Unaffected', 'Syncing again'],
};

export function rollbackNotification(f: CommunicationFacts): string {
  const [vnext, legacy] = IMPACT[f.mode];
  return [
    '### Dual-Write Rollback Notification',
    '',
    `**Date:** ${f.date.slice(0, 16).replace('T', ' ')} UTC`,
    `**Environment:** ${f.environment} (target ${f.target})`,
    `**Action Taken:** ${ACTIONS[f.mode]}`,
    '',
    '**Reason:**',
    f.reason,
    '',
    '**Impact:**',
    `- vNext operations: ${vnext}`,
    `- Legacy operations: ${legacy}`,
    '- User-facing impact: None expected (service health verified after the change)',
    '',
    '**Current State:**',
    ...f.flags.map((flag) => `- ${flag.name}: ${flag.value ?? '(unset)'}`),
    '',
    '**Next Steps:**',
    '1. Investigate root cause',
    '2. Fix identified issue',
    '3. Re-test in staging',
    '4. Re-enable dual-write with monitoring',
    '',
    `**Team:** ${f.requester} (approved by ${f.approvedBy.join(', ') || 'n/a'})`,
    `**Incident Ticket:** ${f.incidentTicket ?? 'n/a'}`,
    `**Workflow:** ${f.workflowId}`,
  ].join('\n');
}
