import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { personKeyPath } from '../src/activities/keys.js';
import { buildDecision } from '../src/cli/commands/decide.js';
import { approveSignal, rejectSignal, statusQuery } from '../src/shared/messages.js';
import type { RunbookResult } from '../src/shared/types.js';
import { runbook, temporal } from './support/cli.js';
import { Harness } from './support/harness.js';
import { saveHistory } from './support/histories.js';
import {
  emergency,
  faults,
  ladderOf,
  saveGoodThenBreak,
  startLadder,
  stepStatus,
  unhealthy,
  withBackend,
} from './support/ladder.js';
import { jobTarget } from './support/migration.js';

// The emergency ladder's per-level approvals (the engine's per-stage approvals): a level waits for its own
// policy on its own plan; rejection, timeout and cancel undo; signed decisions never count across stages.

const h = new Harness();
beforeAll(() => h.start());
afterAll(() => h.close());

describe('emergency ladder: per-level approvals', () => {
  it('a level with an approval policy waits for it; a rejection ends the run and the configuration is put back exactly', async () => {
    const t = await jobTarget(h, {
      migration: emergency({ emergencyConfig: { approvers: ['alice', 'bob'], quorum: 1, timeout: '10m' } }),
    });
    // an invalid percent: unhealthy whatever the faults; the last known good routes to heavydb, which fails
    faults(t, { heavydb: { mode: 'fail' } });
    t.writeIni(withBackend(t, { dual_write: 'true', phase: 'dual-write' }));
    const broken = withBackend(t, { cutover_percent: '150' });
    await saveGoodThenBreak(h, t, broken);
    const found = t.iniBytes();
    await unhealthy(t);

    const handle = await startLadder(h, t);
    const waiting = await h.waitFor(handle, (s) => s.approval.stage === 'level 3 approval');
    expect(waiting.approval.waiting).toBe(true);
    expect(stepStatus(waiting, 'level 3 approval')).toBe('running');
    const stage = waiting.approval.stages!.find((s) => s.stage === 'level 3 approval')!;
    expect(stage).toMatchObject({ status: 'waiting', policy: { approvers: ['alice', 'bob'], quorum: 1 } });
    expect(stage.plan.changes).toEqual([
      { item: 'data_backend.dual_write', from: 'true', to: 'false' },
      { item: 'data_backend.phase', from: 'dual-write', to: 'primary-only' },
    ]);
    // the last known good is in place while level 3 waits
    expect(t.iniBytes().equals(found)).toBe(false);
    const status = await runbook(['status', handle.workflowId], h.env());
    expect(status.stdout).toContain(`level 3 approval: waiting`);

    await handle.signal(rejectSignal, { by: 'alice', comment: 'not the emergency config, call the DBA' });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('rejected');
    expect(result.error).toBe('"level 3 approval" rejected by alice: not the emergency config, call the DBA');
    expect(result.compensations.map((c) => [c.step, c.status])).toEqual([
      ['level 2 restore last known good', 'succeeded'],
    ]);
    expect(t.iniBytes().equals(found)).toBe(true);
    expect(result.approval.records.map((r) => [r.kind, r.stage, r.accepted])).toEqual([
      ['reject', 'level 3 approval', true],
    ]);
    await saveHistory(h.client, handle.workflowId, 'rejected-at-level-3', 'emergency-ladder');
  });

  it('`temporal workflow cancel` while level 3 waits for approval puts the configuration as found back', async () => {
    const t = await jobTarget(h, { migration: emergency({ emergencyConfig: { quorum: 1, timeout: '10m' } }) });
    faults(t, { heavydb: { mode: 'fail' } });
    await saveGoodThenBreak(h, t, withBackend(t, { cutover_percent: '150' }));
    const found = t.iniBytes();
    await unhealthy(t);

    const handle = await startLadder(h, t);
    await h.waitFor(handle, (s) => s.approval.stage === 'level 3 approval');
    expect(t.iniBytes().equals(found)).toBe(false);
    const cancelled = await temporal(['workflow', 'cancel', '--workflow-id', handle.workflowId], h.address);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(await h.waitForClosed(handle.workflowId)).toBe('CANCELLED');
    expect(t.iniBytes().equals(found)).toBe(true);
    const status = await handle.query(statusQuery);
    expect(status.outcome).toBe('cancelled');
    expect(status.compensations.map((c) => [c.step, c.status])).toEqual([
      ['level 2 restore last known good', 'succeeded'],
    ]);
    await saveHistory(h.client, handle.workflowId, 'cancelled-at-level-3-approval', 'emergency-ladder');
  });

  it("a level's approval that times out ends the run timed_out, the level before it undone", async () => {
    const t = await jobTarget(h, { migration: emergency({ emergencyConfig: { quorum: 1, timeout: '2s' } }) });
    faults(t, { heavydb: { mode: 'fail' } });
    await saveGoodThenBreak(h, t, withBackend(t, { cutover_percent: '150' }));
    const found = t.iniBytes();
    await unhealthy(t);
    const result = (await (await startLadder(h, t)).result()) as RunbookResult;
    expect(result.outcome).toBe('timed_out');
    expect(result.error).toBe('approval of "level 3 approval" timed out after 2s');
    expect(result.steps.find((s) => s.name === 'level 3 approval')).toMatchObject({
      status: 'failed',
      error: 'no quorum within 2s',
    });
    expect(result.approval.stages!.map((s) => s.status)).toEqual(['automatic', 'automatic', 'timed_out']);
    expect(result.compensations.map((c) => [c.step, c.status])).toEqual([
      ['level 2 restore last known good', 'succeeded'],
    ]);
    expect(t.iniBytes().equals(found)).toBe(true);
  });

  it('signed per-stage approvals: a decision for one stage never counts for another; runbook approve and temporal workflow signal decide the stage waiting', async () => {
    const alice = await h.personKey('alice');
    const bob = await h.personKey('bob');
    const signed = {
      approvers: [
        { name: 'alice', key: alice.publicKey },
        { name: 'bob', key: bob.publicKey },
      ],
      quorum: 1,
      requireSignatures: true,
      timeout: '10m',
    };
    const t = await jobTarget(h, {
      approval: signed,
      migration: emergency({ lastKnownGood: signed, emergencyConfig: signed }),
    });
    faults(t, { parquet: { mode: 'fail' } });
    // the last known good routes to parquet too (a cut-over): only level 3 helps
    t.writeIni(withBackend(t, { cutover_percent: '25', phase: 'cut-over' }));
    await saveGoodThenBreak(h, t, withBackend(t, { primary: 'parquet', cutover_percent: '0', phase: 'new-only' }));
    await unhealthy(t);

    const handle = await startLadder(h, t);
    const level2 = await h.waitFor(handle, (s) => s.approval.stage === 'level 2 approval');
    // level 2: bob signs with `runbook approve --print`, the JSON goes through `temporal workflow signal`
    const printed = await runbook(['approve', handle.workflowId, '--by', 'bob', '--print'], h.env());
    expect(printed.code, printed.stderr).toBe(0);
    const level2Hash = level2.approval.stages!.find((s) => s.stage === 'level 2 approval')!.planHash;
    expect(JSON.parse(printed.stdout)).toMatchObject({ planHash: level2Hash });
    const signalled = await temporal(
      ['workflow', 'signal', '--workflow-id', handle.workflowId, '--name', 'approve', '--input', printed.stdout.trim()],
      h.address,
    );
    expect(signalled.code, signalled.stderr).toBe(0);
    const aliceForLevel2 = await buildDecision('approve', level2, {
      by: 'alice',
      key: personKeyPath('alice', { RUNBOOK_CONFIG_DIR: h.configDir }),
      comment: 'signed for level 2',
    });

    const level3 = await h.waitFor(handle, (s) => s.approval.stage === 'level 3 approval');
    const level3Hash = level3.approval.stages!.find((s) => s.stage === 'level 3 approval')!.planHash;
    expect(level3Hash).not.toBe(level2Hash);
    // an attacker replays bob's accepted level-2 approval, and alice's unused one signed for level 2
    await handle.signal(approveSignal, JSON.parse(printed.stdout));
    await handle.signal(approveSignal, aliceForLevel2);
    const replayed = await h.waitFor(handle, (s) => s.approval.records.length === 3);
    const because = `plan ${level2Hash.slice(0, 12)} is stage "level 2 approval"'s, not the waiting stage "level 3 approval"'s`;
    expect(replayed.approval.records.map((r) => [r.by, r.stage, r.accepted ? 'accepted' : r.ignoredBecause])).toEqual([
      ['bob', 'level 2 approval', 'accepted'],
      ['bob', 'level 3 approval', because],
      ['alice', 'level 3 approval', because],
    ]);
    expect(replayed.approval.waiting).toBe(true);
    expect(stepStatus(replayed, 'level 3 set emergency configuration')).toBe('pending');

    // `runbook approve` decides the stage waiting
    const approved = await runbook(['approve', handle.workflowId, '--by', 'alice'], h.env());
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toContain('approve for stage "level 3 approval" by alice accepted, signed with key');
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect(ladderOf(result)).toMatchObject({
      healthyAfter: 3,
      levels: [
        { level: 1, approval: 'automatic', healthy: false },
        { level: 2, approval: 'approved by bob', healthy: false },
        { level: 3, approval: 'approved by alice', healthy: true },
      ],
    });
    expect(result.approval.stages!.map((s) => [s.stage, s.status, s.approvedBy])).toEqual([
      ['level 1 approval', 'automatic', []],
      ['level 2 approval', 'approved', ['bob']],
      ['level 3 approval', 'approved', ['alice']],
    ]);
    expect(t.readIni()).toMatch(/^primary = heavydb$/m);
    const report = await runbook(['report', handle.workflowId], h.env());
    expect(report.code, report.stderr).toBe(0);
    expect(report.stdout).toContain('## Approval stages');
    expect(report.stdout).toContain('approve (stage "level 3 approval") by **alice** [signed');
    // the exported bundle verifies (every stage's plan hash is the hash of its stage and plan); a changed stage does not
    const out = join(mkdtempSync(join(h.root, 'ladder-')), 'bundle');
    expect((await runbook(['evidence', handle.workflowId, '--out', out], h.env())).code).toBe(0);
    const anchors = ['--worker-key', h.workerKey.publicKey, '--server', h.address];
    const verified = await runbook(['verify-evidence', out, ...anchors], h.env());
    expect(verified.code, verified.stderr).toBe(0);
    const file = join(out, 'evidence.json');
    writeFileSync(file, readFileSync(file, 'utf8').replace('"status": "approved"', '"status": "automatic"'));
    const tampered = await runbook(['verify-evidence', out, ...anchors], h.env());
    expect(tampered.code).toBe(1);
    expect(tampered.stderr).toContain('MISMATCH evidence.json: "stages" differs from what the chain records');
    await saveHistory(h.client, handle.workflowId, 'signed-stages', 'emergency-ladder');
  });
});
