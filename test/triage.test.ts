import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import { approveSignal, rejectSignal, statusQuery } from '../src/shared/messages.js';
import type { RunbookResult } from '../src/shared/types.js';
import { Harness } from './support/harness.js';
import { saveHistory } from './support/histories.js';
import { runbook } from './support/cli.js';
import { startRunbook } from './support/sqlite.js';
import { failureOf, fakeEndpoint, triageTarget } from './support/triage.js';

const h = new Harness();
beforeAll(() => h.start());
afterAll(() => h.close());

const DUAL = 'TEAM_VNEXT_DUAL_WRITE_ENABLED';
const STRICT = 'TEAM_VNEXT_DUAL_WRITE_STRICT_MODE';

const flagsOf = (file: string) =>
  Object.fromEntries(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('TEAM_VNEXT'))
      .map((l) => l.split('=') as [string, string]),
  );

const startTriage = (environment: string, input: Record<string, unknown> = {}) =>
  startRunbook(h, 'triage', { environment, target: 'web', ...input });

async function approve(handle: WorkflowHandle): Promise<void> {
  const status = await h.waitForApproval(handle);
  await handle.signal(approveSignal, { by: 'alice', planHash: status.planHash! });
}

describe('triage: the decision matrix as a runbook, its chain as child workflows', () => {
  it('500 errors: one approval covers disable strict mode then disable dual write; evidence links both', async () => {
    const t = await triageTarget(h);
    const handle = await startTriage(t.envName, { symptoms: ['errors-500'], incidentTicket: 'INC-11' });
    const waiting = await h.waitForApproval(handle);
    expect(waiting.plan!.summary).toMatch(
      /^errors-500 \(IMMEDIATE\) → run 1\/2: feature-flag-rollback disable-strict-mode on web → run 2\/2: feature-flag-rollback disable-dual-write on web; one approval/,
    );
    const details = waiting.plan!.details as { covers: unknown[]; chain: Array<{ input: { mode: string } }> };
    expect(details.chain.map((c) => c.input.mode)).toEqual(['disable-strict-mode', 'disable-dual-write']);
    expect(details.covers).toHaveLength(2);
    await approve(handle);
    const result = (await handle.result()) as RunbookResult;

    expect(result.outcome).toBe('succeeded');
    expect(flagsOf(t.envFile)).toMatchObject({ [DUAL]: 'false', [STRICT]: 'false' });
    const children = (result.extra!.children as Array<{ workflowId: string; outcome: string; evidence: object }>)!;
    expect(children.map((c) => c.outcome)).toEqual(['succeeded', 'succeeded']);
    for (const c of children) {
      const child = (await h.client.workflow.getHandle(c.workflowId).result()) as RunbookResult;
      // each child passed its gate on the parent's approval, never waited for its own
      expect(child.approval.parentCover).toMatchObject({ covered: true, parent: { workflowId: handle.workflowId } });
      expect(child.approval.parentCover).toMatchObject({ approvedBy: ['alice'] });
      expect(c.evidence).toEqual({
        path: child.evidence!.path,
        sha256: child.evidence!.sha256,
        chainHead: child.evidence!.chainHead,
      });
    }
    const evidence = JSON.parse(readFileSync(result.evidence!.path, 'utf8'));
    expect(JSON.stringify(evidence)).toContain(
      children[1]!.evidence && (children[1]!.evidence as { sha256: string }).sha256,
    );
    await saveHistory(h.client, handle.workflowId, 'chain', 'triage');

    // the same runbook with the same input started by hand (no parent) is not covered: it waits for its own approval
    const byHand = await startRunbook(h, 'feature-flag-rollback', {
      environment: t.envName,
      target: 'web',
      mode: 'disable-dual-write',
    });
    const own = await h.waitForApproval(byHand);
    expect(own.approval.parentCover).toBeUndefined();
    await byHand.signal(rejectSignal, { by: 'alice', planHash: own.planHash!, reason: 'not needed' });
    await byHand.result().catch(() => undefined);
  });

  it('a failing child stops the chain: its undo ran, later children never started, the run names it', async () => {
    const broken = await fakeEndpoint(h, { health: 500 });
    const t = await triageTarget(h, { webHealth: { url: `${broken.url}/health`, within: '1s' } });
    const handle = await startTriage(t.envName, { symptoms: ['errors-500'], noMeasure: true });
    await approve(handle);
    const { result } = await failureOf(handle);
    expect(result.outcome).toBe('failed');
    const first = `${handle.workflowId}--1-feature-flag-rollback`;
    expect(result.error).toContain(`chain stopped: feature-flag-rollback ${first} on web failed`);
    expect(result.steps.map((s) => [s.name, s.status])).toEqual([
      ['lock target', 'succeeded'],
      ['measure symptoms', 'succeeded'],
      ['seal plan', 'succeeded'],
      ['approval', 'succeeded'],
      ['take other targets', 'skipped'],
      ['run 1/2: feature-flag-rollback disable-strict-mode on web', 'failed'],
      ['run 2/2: feature-flag-rollback disable-dual-write on web', 'skipped'],
    ]);
    // the failed child undid its change: strict mode back on; dual write never touched
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);
    const child = await h.client.workflow.getHandle(first).query(statusQuery);
    expect(child.outcome).toBe('failed');
    expect(child.compensations.map((c) => [c.step, c.status])).toEqual([['set flags', 'succeeded']]);
    const second = await h.client.workflow
      .getHandle(`${handle.workflowId}--2-feature-flag-rollback`)
      .describe()
      .catch(() => 'never started');
    expect(second).toBe('never started');
    expect((result.extra!.children as Array<{ outcome: string }>).map((c) => c.outcome)).toEqual(['failed']);
    await saveHistory(h.client, handle.workflowId, 'child-failed', 'triage');
  });

  it('a child on another target: the parent takes that target first, the child shares it and is covered', async () => {
    const edge = await fakeEndpoint(h, { health: 200 });
    const t = await h.demoTarget({
      sections: {
        triage: {
          matrix: [
            {
              symptom: 'errors-500',
              urgency: 'immediate',
              chain: [{ runbook: 'feature-flag-rollback', target: 'web', input: { mode: 'disable-dual-write' } }],
            },
          ],
        },
      },
      targets: { edge: { health: { http: { url: `${edge.url}/health` } } } },
    });
    const handle = await startRunbook(h, 'triage', {
      environment: t.envName,
      target: 'edge',
      symptoms: ['errors-500'],
      noMeasure: true,
    });
    await approve(handle);
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect(result.steps.find((s) => s.name === 'take other targets')).toMatchObject({
      status: 'succeeded',
      result: 'web held for the chain',
    });
    expect(result.locks!.map((l) => [l.target, l.state])).toEqual([
      ['edge', 'released'],
      ['web', 'released'],
    ]);
    const childId = (result.extra!.children as Array<{ workflowId: string }>)[0]!.workflowId;
    const child = (await h.client.workflow.getHandle(childId).result()) as RunbookResult;
    expect(child.approval.parentCover).toMatchObject({ covered: true });
    expect(child.locks![0]).toMatchObject({ target: 'web', sharedWith: { workflowId: handle.workflowId } });
    expect(flagsOf(t.envFile)).toMatchObject({ [DUAL]: 'false', [STRICT]: 'true' });
  });

  it('measures symptoms itself: a failing health endpoint and a latency metric, without --symptom', async () => {
    const edge = await fakeEndpoint(h, { health: 503 });
    const exporter = await fakeEndpoint(h, {
      metrics: '# TYPE http_latency_ratio_to_baseline gauge\nhttp_latency_ratio_to_baseline{route="/api"} 2.7\n',
    });
    const t = await triageTarget(h, { edgeHealth: `${edge.url}/health`, metricsUrl: `${exporter.url}/metrics` });
    const handle = await startTriage(t.envName, { dryRun: true });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('dry_run');
    const readings = result.results!.symptoms as Array<{ symptom: string; source: string; present: boolean }>;
    expect(readings.map((r) => [r.symptom, r.source, r.present])).toEqual([
      ['errors-500', 'measured', true],
      ['latency-2x', 'measured', true],
    ]);
    // the same disable-dual-write answers both: it runs once, in the most urgent place
    expect(result.plan!.summary).toMatch(
      /^errors-500 \(IMMEDIATE\), latency-2x \(HIGH\) → run 1\/2: feature-flag-rollback disable-strict-mode on web → run 2\/2: feature-flag-rollback disable-dual-write on web;/,
    );
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);
  });

  it('runbook triage (the CLI): symptoms from --symptom, a dry run proposes the chain', async () => {
    const t = await triageTarget(h);
    const run = await runbook(
      [
        'triage',
        '--env',
        t.envName,
        '--target',
        'web',
        '--symptom',
        'latency-2x',
        '--no-measure',
        '--dry-run',
        '--wait',
      ],
      h.env(),
    );
    expect(run.stdout).toContain(`started triage on ${t.envName}/web`);
    expect(run.stdout).toContain(`workflow id: triage--${t.envName}--web`);
    const status = await h.client.workflow.getHandle(`triage--${t.envName}--web`).query(statusQuery);
    expect(status.outcome).toBe('dry_run');
    expect(status.plan!.summary).toMatch(
      /^latency-2x \(HIGH\) → run 1\/1: feature-flag-rollback disable-dual-write on web;/,
    );
    const bad = await runbook(['triage', '--env', t.envName, '--target', 'web', '--no-measure'], h.env());
    expect(bad.stderr).toContain('--no-measure needs --symptom');
  });

  it('monitor only: a symptom without runbooks changes nothing and needs no approval', async () => {
    const t = await triageTarget(h);
    const handle = await startTriage(t.envName, { symptoms: ['dual-write-failed-strict-off'], noMeasure: true });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect(result.plan!.summary).toBe('monitor only: dual-write-failed-strict-off (no runbook in the matrix for it)');
    expect(result.steps.find((s) => s.name === 'approval')!.status).toBe('skipped');
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);
  });

  it('an unknown symptom is InvalidInput naming the field, before any change', async () => {
    const t = await triageTarget(h);
    const handle = await startTriage(t.envName, { symptoms: ['sky-falling'] });
    const cause = await failureOf(handle);
    expect(cause.type).toBe('InvalidInput');
    expect(cause.message).toMatch(
      /^triage failed: invalid input: symptoms: unknown sky-falling \(triage.matrix has errors-500, /,
    );
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);
  });
});
