import { describe, expect, it } from 'vitest';
import { approveSignal } from '../src/shared/messages.js';
import { harnessWithPool } from './support/cleanup.js';
import { printed, runbook, runbookLive } from './support/cli.js';
import { Harness } from './support/harness.js';
import { duplicateMappingsTarget, startDuplicateMappingsTriage, withTraffic } from './support/triage-cleanup.js';

/**
 * `runbook watch <triage id>` says when the chain waits on a child's own approval — the block `status` shows (the
 * child, its plan, approve/reject) printed once — and keeps watching until the chain ends. Real dev server, real
 * Postgres, the demo web service, the CLI as a child process.
 */
const h = new Harness();
const db = harnessWithPool(h);

describe('runbook watch of a triage chain', () => {
  it('prints the child waiting for its own approval once, and follows the chain to its end after the approval', async () => {
    const { t } = await duplicateMappingsTarget(h, db());
    const parent = await startDuplicateMappingsTriage(h, t);
    const parentPlan = await h.waitForApproval(parent);
    const watch = runbookLive(['watch', parent.workflowId], h.env());
    await parent.signal(approveSignal, { by: 'alice', planHash: parentPlan.planHash! });

    const childId = `${parent.workflowId}--2-test-data-cleanup`;
    const waitLine = `WAITING: the chain waits for the approval of test-data-cleanup ${childId} on ${t.envName}/cleanup, 0/1 approvals; triage's approval does not cover it`;
    const shown = await printed(watch, waitLine);
    const child = await h.waitForApproval(h.client.workflow.getHandle(childId));
    expect(shown).toContain(`  plan ${child.planHash}`);
    expect(shown).toContain(`exactly the id set sha256 ${child.plan!.details!.idsDigest as string}`);
    expect(shown).toContain(`  approve: runbook approve ${childId} --by <name>`);
    expect(shown).toContain(`  reject:  runbook reject ${childId} --by <name> --comment "<why>"   (stops the chain)`);

    // the operator runs the printed command; watch, still running, follows the chain to its end
    const approved = await runbook(['approve', childId, '--by', 'bob'], h.env());
    expect(approved.code).toBe(0);
    const end = await withTraffic(t, watch.done);
    expect(end.code).toBe(0);
    expect(end.stdout.split('WAITING: the chain waits').length - 1).toBe(1);
    const after = end.stdout.slice(end.stdout.indexOf(waitLine));
    expect(after).toContain(`run 2/3: test-data-cleanup on cleanup: succeeded (${childId}: succeeded)`);
    expect(after).toContain('run 3/3: feature-flag-rollback enable-dual-write on web: succeeded');
    expect(end.stdout.trimEnd().split('\n').at(-2)).toBe('outcome: SUCCEEDED');
  });
});
