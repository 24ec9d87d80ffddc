import { describe, expect, it } from 'vitest';
import { communicationContext, renderCommunication } from '../src/activities/evidence/communication.js';
import type { EvidenceDocument } from '../src/activities/evidence/document.js';
import { startedInput } from '../src/activities/evidence/history.js';
import { renderPostmortem } from '../src/activities/evidence/postmortem.js';
import type { PlanChange } from '../src/shared/types.js';
import { formatRto, isRtoReport } from '../src/workflows/sqlite/rto.js';
import { recordedEvidence, recordedHistory, recordedRunsWithEvidence } from './support/recorded-evidence.js';

// The communication and post-mortem templates filled from the evidence of real runs the runbooks' tests recorded
// (test/histories): every assertion below reads its expectation from that evidence, not from a fixture.

const section = (text: string, heading: string): string => {
  const start = text.indexOf(`**${heading}:**\n`);
  expect(start, `section ${heading}`).toBeGreaterThanOrEqual(0);
  const rest = text.slice(start + heading.length + 6);
  return rest.slice(0, rest.search(/\n\n|$/));
};
const acceptedApprovers = (doc: EvidenceDocument): string[] => [
  ...new Set(doc.approvals.filter((a) => a.kind === 'approve' && a.accepted).map((a) => a.by)),
];

describe('every recorded run: both templates filled from its own evidence', () => {
  const names = recordedRunsWithEvidence();
  it('covers every runbook that has recorded runs', () => {
    const runbooks = new Set(names.map((n) => recordedEvidence(n).runbook));
    for (const rb of [
      'feature-flag-rollback',
      'dual-write-rollback',
      'sqlite-restore',
      'emergency-ladder',
      'job-replay',
    ])
      expect(runbooks).toContain(rb);
    for (const rb of ['backend-phase-switch', 'test-data-cleanup', 'output-recovery', 'postgres-restore'])
      expect(runbooks).toContain(rb);
  });

  it.each(names)('%s', (name) => {
    const doc = recordedEvidence(name);
    const comm = renderCommunication(doc);
    const pm = renderPostmortem(doc);
    for (const text of [comm, pm]) {
      expect(text).not.toMatch(/undefined|\[object Object\]|NaN/);
      expect(text).toContain(doc.workflowId);
      for (const by of acceptedApprovers(doc)) expect(text).toContain(by);
      for (const c of doc.compensations) expect(text).toContain(c.step);
    }
    expect(comm).toContain(`**Environment:** ${doc.environment} (target ${doc.target})`);
    expect(comm).toContain(`**Date:** ${(doc.endedAt ?? doc.startedAt).slice(0, 16).replace('T', ' ')} UTC`);
    expect(section(comm, 'Reason')).toBe(doc.reason);
    // how it ended: said unless it simply succeeded
    if (doc.outcome === 'succeeded') expect(comm).not.toContain('**Outcome:**');
    else expect(comm).toContain(`**Outcome:** ${String(doc.outcome).toUpperCase()}`);
    // what was undone, with its status; what was kept, with why
    for (const c of doc.compensations)
      expect(section(comm, 'Undone')).toContain(
        c.status === 'kept' ? `${c.step}: left in place on purpose` : `${c.step}: undo ${c.status}`,
      );
    if (!doc.compensations.length) expect(comm).not.toContain('**Undone:**');
    // the impact numbers the runbook recorded
    const extra = doc.extra ?? {};
    if (typeof extra.severity === 'string') expect(comm).toContain(`- Severity: ${extra.severity}`);
    if (typeof extra.dataLoss === 'string') expect(comm).toContain(`- Data loss: ${extra.dataLoss}`);
    if (isRtoReport(extra.rto)) expect(comm).toContain(`- ${formatRto(extra.rto)}`);
    expect(pm).toContain(`# Incident Post-Mortem: `);
    expect(pm).toContain(`- Rollback procedure used: \`${doc.runbook}\``);
    expect(pm).toMatch(/\n- What the run did: \S/);
  });
});

describe('feature-flag rollback: the notification the run sent, again from its evidence', () => {
  it('approve path: identical to what the run sent', () => {
    const doc = recordedEvidence('feature-flag-rollback.approve-path');
    expect(typeof doc.extra?.notification).toBe('string');
    expect(renderCommunication(doc)).toBe(doc.extra!.notification);
  });

  it('abort after the change: nothing in effect, the flag back to what it was, the undo named', () => {
    const doc = recordedEvidence('feature-flag-rollback.abort-after-change');
    const comm = renderCommunication(doc);
    const change = doc.plan!.changes[0]!;
    expect(comm).toContain(`**Outcome:** ABORTED by ${doc.abort!.by} at ${doc.abort!.at}: ${doc.abort!.reason}`);
    expect(section(comm, 'Current State')).toContain(`- ${change.item}: ${change.from} (change undone)`);
    expect(section(comm, 'Impact')).toContain('- Legacy operations: Unaffected');
    expect(section(comm, 'Undone')).toBe(`- set flags: undo ${doc.compensations[0]!.status}`);
  });

  it('dry run and rejection: nothing taken, the plan named', () => {
    const dry = renderCommunication(recordedEvidence('feature-flag-rollback.dry-run'));
    expect(dry).toContain('**Action Taken:** None (dry run); planned: Blocked legacy writes and disabled dual-write');
    expect(dry).toContain('- User-facing impact: None: nothing was changed');
    const rejectedDoc = recordedEvidence('feature-flag-rollback.reject-path');
    const rejected = renderCommunication(rejectedDoc);
    expect(rejected).toContain('**Action Taken:** None (rejected); planned: Disabled dual-write');
    expect(rejected).toContain(`**Outcome:** REJECTED: ${rejectedDoc.error}`);
    for (const c of rejectedDoc.plan!.changes) expect(rejected).toContain(`- ${c.item}: ${c.from} (unchanged)`);
  });
});

describe('other runbooks: their own action, numbers and state', () => {
  it('emergency ladder, escalated: levels climbed, changes left in place, automatic stages as approvers', () => {
    const doc = recordedEvidence('emergency-ladder.escalated');
    const comm = renderCommunication(doc);
    const ladder = doc.extra!.ladder as { outcome: string; levels: Array<{ level: number; action: string }> };
    expect(comm).toContain(
      `**Action Taken:** ${ladder.levels.map((l) => `L${l.level} ${l.action} (still unhealthy)`).join(' → ')}`,
    );
    expect(section(comm, 'Current State')).toContain(`- Service: ${ladder.outcome}`);
    expect(section(comm, 'Current State')).toContain('(left in place on purpose;');
    expect(comm).toMatch(/\*\*Team:\*\* \S+ \(approved by the automatic policy \(level 1 approval, /);
    expect(comm).toContain('1. Take over: the change was left in place on purpose (see Undone)');
  });

  it('emergency ladder: Current State lists only the levels that ran and the changes they made', () => {
    const LEVEL_CHANGE: Record<number, string> = {
      2: 'level 2 restore last known good',
      3: 'level 3 set emergency configuration',
    };
    const ladders = recordedRunsWithEvidence().filter((n) => n.startsWith('emergency-ladder.'));
    expect(ladders.length).toBeGreaterThanOrEqual(5);
    for (const name of ladders) {
      const doc = recordedEvidence(name);
      const state = section(renderCommunication(doc), 'Current State').split('\n');
      const ladder = doc.extra!.ladder as {
        healthyAfter: number | null;
        levels: Array<{ level: number; action: string; healthy?: boolean; skipped?: string }>;
      };
      // every level the ladder reached, once, with what happened there; none it never reached
      const reached = ladder.levels.map((l) => l.level);
      for (const level of [1, 2, 3])
        expect(
          state.filter((l) => l.startsWith(`- Level ${level} `)),
          `${name} level ${level}`,
        ).toHaveLength(reached.includes(level) ? 1 : 0);
      for (const l of ladder.levels.filter((x) => typeof x.healthy === 'boolean'))
        expect(state).toContain(
          `- Level ${l.level} ${l.action}: ran (${(l as { approval?: string }).approval}), ${l.healthy ? 'healthy after it' : 'still unhealthy'}`,
        );
      // configuration changes only of levels whose change step ran
      for (const level of [2, 3]) {
        const ran = doc.steps.some(
          (x) => x.name === LEVEL_CHANGE[level] && (x.status === 'succeeded' || x.status === 'compensated'),
        );
        const stage = doc.stages!.find((x) => x.stage === `level ${level} approval`);
        const lines = state.filter((l) => l.startsWith(`- level ${level}: `));
        expect(lines, `${name} level ${level} changes`).toHaveLength(ran ? stage!.plan.changes.length : 0);
      }
      if (ladder.healthyAfter !== null)
        expect(state[0]).toBe(
          `- Service: healthy after level ${ladder.healthyAfter} (${ladder.levels.at(-1)!.action})`,
        );
    }
    const rejected = section(
      renderCommunication(recordedEvidence('emergency-ladder.rejected-at-level-3')),
      'Current State',
    );
    expect(rejected).toContain('- Service: not made healthy by the ladder (the run ended REJECTED)');
    expect(rejected).toContain('- Level 3 emergency configuration: not run (rejected at its approval)');
    const healthy = section(
      renderCommunication(recordedEvidence('emergency-ladder.healthy-after-level-2')),
      'Current State',
    );
    expect(healthy).not.toMatch(/level 3/i);
  });

  it('emergency ladder with signed stages: each approver with the stage they approved', () => {
    const doc = recordedEvidence('emergency-ladder.signed-stages');
    const comm = renderCommunication(doc);
    for (const a of doc.approvals.filter((x) => x.accepted && x.kind === 'approve'))
      expect(comm).toContain(`${a.by} (${a.stage})`);
  });

  it('job replay: the counts it recorded, and where the jobs ended', () => {
    const doc = recordedEvidence('job-replay.vanished-job');
    const comm = renderCommunication(doc);
    const { replay, drain } = doc.extra as Record<string, Record<string, number>>;
    expect(comm).toContain(
      `  - replay: requeued ${replay!.requeued}, already ${replay!.already}, vanished ${replay!.vanished}, moved ${replay!.moved}`,
    );
    expect(section(comm, 'Current State')).toContain(
      `- After the replay: ${drain!.completed} completed, ${drain!.failed} failed, ${drain!.pending} pending`,
    );
  });

  it('job replay: the backend override as it stands (restored, or undone), never the plan as done', () => {
    const doc = recordedEvidence('job-replay.approve-path');
    const [jobs, override] = doc.plan!.changes as [PlanChange, PlanChange];
    const state = section(renderCommunication(doc), 'Current State');
    expect(state).toContain(`- ${override.item}: ${override.from} (${override.to} during the replay, then restored)`);
    expect(state).not.toContain(jobs.to!);
    const aborted = recordedEvidence('job-replay.abort-restores-override');
    const replay = aborted.extra!.replay as { requeued: number };
    const abortedState = section(renderCommunication(aborted), 'Current State');
    expect(abortedState).toContain(`- Jobs requeued: ${replay.requeued} `);
    expect(abortedState).toContain(`- ${override.item}: ${override.from} (change undone)`);
    expect(abortedState).not.toContain(aborted.plan!.changes[0]!.item);
  });

  it('output recovery: the replayed jobs as the child run ended', () => {
    const doc = recordedEvidence('output-recovery.approve-with-replay');
    const replay = doc.extra!.replay as { workflowId: string; outcome: string };
    const jobs = doc.plan!.changes.find((c) => / jobs$/.test(c.item))!;
    expect(section(renderCommunication(doc), 'Current State')).toContain(
      `- ${jobs.item}: replayed by ${replay.workflowId} (${replay.outcome})`,
    );
  });

  it('triage: each child as it ended, the ones never started; a kept mitigation is an action taken', () => {
    const doc = recordedEvidence('triage.cleanup-rejected');
    const comm = renderCommunication(doc);
    const children = doc.extra!.children as Array<{
      run: string;
      runbook: string;
      target: string;
      outcome: string;
      workflowId: string;
    }>;
    const chain = (doc.plan!.details as { chain: Array<{ runbook: string; target: string }> }).chain;
    expect(comm).toContain(
      `**Action Taken:** ${children.map((c) => `run ${c.run} ${c.runbook} on ${c.target}: ${c.outcome}`).join(' → ')}`,
    );
    const state = section(comm, 'Current State');
    for (const c of children)
      expect(state).toContain(`- run ${c.run} ${c.runbook} on ${c.target}: ${c.outcome.toUpperCase()}`);
    expect(state).toContain(`- run 3/3 ${chain[2]!.runbook} on ${chain[2]!.target}: not started`);
    expect(state).toContain(`(its own approval) — ${children[1]!.workflowId}`);
    expect(comm).toContain('1. Take over: the change was left in place on purpose');
    // nothing a child did stayed: "None", the plan named, the failed child under Current State
    const failed = renderCommunication(recordedEvidence('triage.child-failed'));
    expect(failed).toContain('**Action Taken:** None (failed); planned: errors-500 (IMMEDIATE)');
    expect(section(failed, 'Current State')).toMatch(/^- run 1\/2 feature-flag-rollback on web: FAILED — /);
  });

  it('backend phase switch whose soak failed: what it tried, where it rolled back to', () => {
    const doc = recordedEvidence('backend-phase-switch.soak-fails-rolls-back');
    const comm = renderCommunication(doc);
    const e = doc.extra as Record<string, string>;
    expect(comm).toContain(`**Action Taken:** Tried ${e.from} → ${e.to}`);
    expect(comm).toContain(`; rolled back to ${e.rolledBackTo}`);
    expect(section(comm, 'Current State')).toContain(`- Phase: ${e.rolledBackTo}`);
    expect(comm).toContain(`**Outcome:** FAILED: ${doc.error}`);
  });

  it('dual-write rollback: detected and verified counts as the impact, the repairs as the state', () => {
    const doc = recordedEvidence('dual-write-rollback.postgres-authoritative');
    const comm = renderCommunication(doc);
    const counts = (doc.extra!.detection as { counts: Record<string, number> }).counts;
    expect(comm).toContain(
      `  - detection.counts: ${Object.entries(counts)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}`,
    );
    for (const c of doc.plan!.changes) expect(section(comm, 'Current State')).toContain(`- ${c.item}: ${c.to}`);
  });

  it('sqlite restore: severity, services, data loss and RTO in both; backup and forensic copy in the post-mortem', () => {
    const doc = recordedEvidence('sqlite-restore.approve-path');
    const comm = renderCommunication(doc);
    const extra = doc.extra as Record<string, any>;
    expect(comm).toContain(`- Services affected: ${extra.servicesAffected.join(', ')}`);
    expect(comm).toContain('- User-facing impact: None expected (service health verified after the change)');
    // the ticket the run was started with: not in its evidence, in its history (as `runbook report` reads it)
    const history = recordedHistory('sqlite-restore.approve-path');
    const ticket = startedInput(history)!.incidentTicket as string;
    expect(ticket).toBeTruthy();
    expect(comm).toContain('**Incident Ticket:** n/a');
    expect(renderCommunication(doc, communicationContext(history))).toContain(`**Incident Ticket:** ${ticket}`);
    const pm = renderPostmortem(doc);
    expect(pm).toContain(`- Severity: ${extra.severity}`);
    expect(pm).toContain(`- Backup used: ${extra.backup.file} (taken ${extra.backup.createdAt})`);
    expect(pm).toContain(`- Forensic copy: ${extra.forensicCopy.dir}`);
    expect(pm).toContain('- Measured by the run:\n  - ');
  });

  it('test-data cleanup whose verification failed: counts deleted and re-inserted, the rows back', () => {
    const doc = recordedEvidence('test-data-cleanup.verify-fails-undo');
    const comm = renderCommunication(doc);
    const line = (counts: Record<string, number>) =>
      Object.entries(counts)
        .map(([table, n]) => `${table} ${n}`)
        .join(', ');
    const extra = doc.extra as { deleted: Record<string, number>; undo: { inserted: Record<string, number> } };
    expect(comm).toContain(`  - deleted: ${line(extra.deleted)}\n  - undo.inserted: ${line(extra.undo.inserted)}`);
    for (const c of doc.plan!.changes)
      expect(section(comm, 'Current State')).toContain(`- ${c.item}: ${c.from} (change undone)`);
    expect(comm).toContain(`**Outcome:** FAILED: ${doc.error}`);
  });

  it('postgres restore: the baseline counts it took, the databases as they stand, the data loss', () => {
    const doc = recordedEvidence('postgres-restore.approve-path');
    const comm = renderCommunication(doc);
    const baseline = doc.extra!.baseline as Record<string, number>;
    expect(comm).toContain(
      `  - baseline: ${Object.entries(baseline)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}`,
    );
    for (const c of doc.plan!.changes) expect(section(comm, 'Current State')).toContain(`- ${c.item}: ${c.to}`);
    expect(comm).toContain(`- Data loss: ${doc.extra!.dataLoss as string}`);
  });

  it('dual-write check: the differences it found now and at the check before, its severity', () => {
    const doc = recordedEvidence('dual-write-check.critical-page');
    const comm = renderCommunication(doc);
    const detection = doc.extra!.detection as { total: number; severity: string; previous: { total: number } };
    expect(section(comm, 'Current State')).toContain(
      `- Differences between the stores: ${detection.total} (${detection.severity})`,
    );
    expect(section(comm, 'Current State')).toContain(`): ${detection.previous.total}`);
    expect(comm).toContain(`- Severity: ${doc.extra!.severity as string}`);
  });

  it('sqlite milestone rollback: the backup named as a file, the undo of each step listed', () => {
    const doc = recordedEvidence('sqlite-milestone-rollback.abort-after-drop');
    const pm = renderPostmortem(doc);
    expect(pm).toContain(`- Backup used: ${doc.extra!.backup as string}`);
    expect(pm).toContain(`- Undone: ${doc.compensations.map((c) => `${c.step} (${c.status})`).join(', ')}`);
  });
});
