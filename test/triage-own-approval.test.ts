import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import { approveSignal, rejectSignal, statusQuery } from '../src/shared/messages.js';
import type { RunbookResult, RunbookStatus } from '../src/shared/types.js';
import { CLEANUP_TABLES, harnessWithPool, TEST_COUNTS } from './support/cleanup.js';
import { runbook } from './support/cli.js';
import { Harness, type DemoTarget } from './support/harness.js';
import { saveHistory } from './support/histories.js';
import { failureOf } from './support/triage.js';
import { duplicateMappingsTarget, startDuplicateMappingsTriage, withTraffic } from './support/triage-cleanup.js';

/**
 * Triage must not let its one approval cover data deletion it never showed: a test-data-cleanup child is not in the
 * parent's `covers`; it stops at its own approval of its own plan (the exact set it deletes), with `runbook status`
 * of the triage run saying so. Real dev server, real Postgres, the demo web service.
 */
const h = new Harness();
const db = harnessWithPool(h);

const DUAL = 'TEAM_VNEXT_DUAL_WRITE_ENABLED';

async function rowCounts(schema: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of CLEANUP_TABLES)
    out[table] = Number((await db().query(`SELECT count(*) AS n FROM "${schema}"."${table}"`)).rows[0].n);
  return out;
}

/** Starts the chain, approves the triage plan, returns the cleanup child once it waits for its own approval. */
async function chainAtCleanupApproval(t: DemoTarget): Promise<{
  parent: WorkflowHandle;
  child: WorkflowHandle;
  waiting: RunbookStatus;
  parentPlan: RunbookStatus;
}> {
  const parent = await startDuplicateMappingsTriage(h, t);
  const parentPlan = await h.waitForApproval(parent);
  await parent.signal(approveSignal, { by: 'alice', planHash: parentPlan.planHash! });
  const child = h.client.workflow.getHandle(`${parent.workflowId}--2-test-data-cleanup`);
  return { parent, child, waiting: await h.waitForApproval(child), parentPlan };
}

describe('triage: a child that deletes data waits for its own approval of its own plan', () => {
  it('the chain stops at the cleanup child, which shows its exact set; approving it continues the chain', async () => {
    const { t, schema } = await duplicateMappingsTarget(h, db());
    const before = await rowCounts(schema);
    const { parent, child, waiting, parentPlan } = await chainAtCleanupApproval(t);

    // the triage plan said so, and its approval covers only the two flag changes
    expect(parentPlan.plan!.summary).toContain(
      '; this approval covers run 1, 3; run 2 (test-data-cleanup on cleanup) asks for its own approval: its plan is the exact set of rows it deletes',
    );
    const details = parentPlan.plan!.details as {
      covers: Array<{ workflowType: string }>;
      chain: Array<{ runbook: string; ownApproval?: string }>;
    };
    expect(details.covers.map((c) => c.workflowType)).toEqual(['featureFlagRollback', 'featureFlagRollback']);
    expect(details.chain.map((c) => c.ownApproval !== undefined)).toEqual([false, true, false]);

    // the child: not covered, waiting for its own approval of exactly the identified set
    expect(waiting.approval.parentCover).toEqual({
      covered: false,
      why: expect.stringMatching(/^test-data-cleanup needs its own approval: its plan is the exact set of rows/),
    });
    const counts = waiting.plan!.details!.counts as Record<string, number>;
    expect(Object.fromEntries(Object.entries(counts).map(([k, v]) => [k.replace(`${schema}.`, ''), v]))).toEqual(
      TEST_COUNTS,
    );
    const idsDigest = waiting.plan!.details!.idsDigest as string;
    expect(waiting.plan!.summary).toContain(`delete 27 rows of test data on ${t.envName}/cleanup in one transaction`);
    expect(waiting.plan!.summary).toContain(`exactly the id set sha256 ${idsDigest}`);
    expect(await rowCounts(schema)).toEqual(before);

    // the triage run: run 1 done, run 2 running on its own approval; `runbook status` names the child and how
    const now = await parent.query(statusQuery);
    expect(now.steps.filter((s) => s.name.startsWith('run ')).map((s) => s.status)).toEqual(['succeeded', 'running']);
    expect(now.results!.children).toMatchObject([
      { run: '1/3', approval: 'covered', outcome: 'succeeded' },
      { run: '2/3', workflowId: child.workflowId, approval: 'own', outcome: 'running' },
    ]);
    const shown = await runbook(['status', parent.workflowId], h.env());
    expect(shown.stdout).toContain(
      `WAITING: the chain waits for the approval of test-data-cleanup ${child.workflowId} on ${t.envName}/cleanup, 0/1 approvals; triage's approval does not cover it`,
    );
    expect(shown.stdout).toContain(`  plan ${waiting.planHash}`);
    expect(shown.stdout).toContain(`exactly the id set sha256 ${idsDigest}`);
    expect(shown.stdout).toContain(`  approve: runbook approve ${child.workflowId} --by <name>`);
    expect(shown.stdout).toContain(
      `run 2/3 test-data-cleanup on cleanup  ${child.workflowId}: running (its own approval)`,
    );

    await child.signal(approveSignal, { by: 'bob', planHash: waiting.planHash! });
    const result = (await withTraffic(t, parent.result())) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    const children = result.extra!.children as Array<{ outcome: string; approval: string; approvedBy?: string[] }>;
    expect(children.map((c) => [c.outcome, c.approval, c.approvedBy])).toEqual([
      ['succeeded', 'covered', undefined],
      ['succeeded', 'own', ['bob']],
      ['succeeded', 'covered', undefined],
    ]);
    const after = await rowCounts(schema);
    expect(Object.fromEntries(CLEANUP_TABLES.map((x) => [x, before[x]! - after[x]!]))).toEqual(TEST_COUNTS);
    // stop dual write → clean up → re-enable: the flags as they were
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);
    await saveHistory(h.client, parent.workflowId, 'cleanup-own-approval', 'triage');
    await saveHistory(h.client, child.workflowId, 'under-triage-own-approval', 'test-data-cleanup');
  });

  it('rejecting the child stops the chain: nothing deleted, the later run never started, the outcome in the evidence', async () => {
    const { t, schema } = await duplicateMappingsTarget(h, db());
    const before = await rowCounts(schema);
    const { parent, child, waiting } = await chainAtCleanupApproval(t);
    await child.signal(rejectSignal, { by: 'bob', planHash: waiting.planHash!, reason: 'team 13 is real' });

    const { result } = await failureOf(parent);
    expect(result.outcome).toBe('failed');
    expect(result.error).toContain(`chain stopped: test-data-cleanup ${child.workflowId} on cleanup rejected`);
    expect(result.steps.filter((s) => s.name.startsWith('run ')).map((s) => s.status)).toEqual([
      'succeeded',
      'failed',
      'skipped',
    ]);
    const third = await h.client.workflow
      .getHandle(`${parent.workflowId}--3-feature-flag-rollback`)
      .describe()
      .catch(() => 'never started');
    expect(third).toBe('never started');
    expect(await rowCounts(schema)).toEqual(before);
    // the mitigation before it stays: dual write off
    expect(readFileSync(t.envFile, 'utf8')).toContain(`${DUAL}=false`);

    const evidence = JSON.parse(readFileSync(result.evidence!.path, 'utf8')) as {
      extra: { children: Array<{ workflowId: string; outcome: string; approval: string; evidence?: object }> };
    };
    expect(evidence.extra.children.map((c) => [c.workflowId, c.outcome, c.approval])).toEqual([
      [`${parent.workflowId}--1-feature-flag-rollback`, 'succeeded', 'covered'],
      [child.workflowId, 'rejected', 'own'],
    ]);
    expect(evidence.extra.children[1]!.evidence).toBeDefined();
    await saveHistory(h.client, parent.workflowId, 'cleanup-rejected', 'triage');
  });
});
