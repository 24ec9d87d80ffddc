import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INITIAL_PROCESSOR_INI } from '../src/demo/job-processor-environment.js';
import { ErrorType } from '../src/shared/constants.js';
import { abortSignal, rejectSignal } from '../src/shared/messages.js';
import type { RunbookResult } from '../src/shared/types.js';
import { replayTag } from '../src/activities/migration/jobs/spool-names.js';
import { Harness } from './support/harness.js';
import { saveHistory } from './support/histories.js';
import { startRunbook } from './support/sqlite.js';
import { corruptOutputs, filesOf, snapshot, startRecovery } from './support/output-recovery.js';
import { approve, failureOf } from './support/sqlite-recovery.js';
import { runbook, temporalStart } from './support/cli.js';

const h = new Harness();
beforeAll(() => h.start());
afterAll(() => h.close());

const stepOf = (r: RunbookResult, name: string) => r.steps.find((s) => s.name === name);

describe('output-recovery', () => {
  it('quarantines exactly the corrupt runs and restores the ones with a verified backup; nothing else moves', async () => {
    const c = await corruptOutputs(h);
    const { t } = c;
    const before = snapshot(t);
    const pid = (await t.stats()).pid;
    const completedBefore = t.logLines().filter((l) => l.includes(' Completed job ')).length;
    const handle = await startRecovery(h, t, { replay: false });
    const status = await approve(h, handle);
    expect(status.plan!.details).toMatchObject({
      counts: { empty: 2, truncated: 2, digest: 2, unparsable: 1 },
      restorable: 3,
      covers: [],
    });
    expect(status.plan!.summary).toMatch(
      /^quarantine 7 corrupt output runs .* restore 3 from .*; 4 jobs are NOT replayed/,
    );
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect(stepOf(result, 'replay jobs')).toMatchObject({ status: 'skipped', result: 'replay: false in the input' });

    const quarantine = readdirSync(t.quarantineDir);
    expect(quarantine).toHaveLength(1);
    const qdir = join(t.quarantineDir, quarantine[0]!);
    // every corrupt run, byte for byte as found, and nothing else
    expect(
      readdirSync(qdir)
        .filter((n) => n !== 'quarantine.json')
        .sort(),
    ).toEqual(Object.keys(c.corrupt).sort());
    for (const run of Object.keys(c.corrupt)) {
      const found = Object.entries(before.outputs).filter(([p]) => p.startsWith(`${run}/`));
      expect(filesOf(join(qdir, run))).toEqual(Object.fromEntries(found.map(([p, d]) => [p.slice(run.length + 1), d])));
    }
    const after = snapshot(t);
    // restored runs are the backup copies; the unrestorable ones are gone from outputs; all others untouched
    const expected = { ...before.outputs };
    for (const run of Object.keys(c.corrupt))
      for (const p of Object.keys(expected)) if (p.startsWith(`${run}/`)) delete expected[p];
    for (const run of c.restorable)
      for (const [p, d] of Object.entries(before.backup)) if (p.startsWith(`${run}/`)) expected[p] = d;
    expect(after.outputs).toEqual(expected);
    expect(after.backup).toEqual(before.backup);
    expect(after.jobs).toEqual(before.jobs);
    expect(after.ini).toBe(before.ini);
    // the processor was stopped and started again; no job ran
    expect((await t.stats()).pid).not.toBe(pid);
    expect((await t.health()).status).toBe(200);
    expect(t.logLines().filter((l) => l.includes(' Completed job ')).length).toBe(completedBefore);
    expect(result.extra).toMatchObject({ recovery: { corrupt: 7, restorable: 3, replayJobs: 4 } });
    await saveHistory(h.client, handle.workflowId, 'approve-no-replay', 'output-recovery');
  });

  it('a rejection leaves every output where it was', async () => {
    const { t } = await corruptOutputs(h);
    const before = snapshot(t);
    const pid = (await t.stats()).pid;
    const handle = await startRecovery(h, t, { replay: false });
    const status = await h.waitForApproval(handle);
    await handle.signal(rejectSignal, { by: 'bob', planHash: status.planHash!, comment: 'not now' });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('rejected');
    const after = snapshot(t);
    expect({ ...after, work: {} }).toEqual({ ...before, work: {} });
    expect((await t.stats()).pid).toBe(pid);
  });

  it('an abort after the quarantine puts every run back, byte-identical, and the processor runs', async () => {
    const { t } = await corruptOutputs(h, { healthWithin: '4s' });
    const before = snapshot(t);
    // the processor comes back unhealthy (its backend fails): the run waits in 'verify healthy' for the abort
    await t.setFault('heavydb', { mode: 'fail' });
    const handle = await startRecovery(h, t, { replay: false, backend: 'heavydb' });
    await approve(h, handle);
    await h.waitFor(handle, (s) => s.currentStep === 'verify healthy');
    await handle.signal(abortSignal, { by: 'alice', reason: 'wrong outputs dir' });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('aborted');
    const after = snapshot(t);
    expect(after.outputs).toEqual(before.outputs);
    expect(Object.keys(after.quarantine)).toEqual([]);
    expect(result.compensations.map((x) => [x.step, x.status])).toEqual([
      ['restore from backup', 'succeeded'],
      ['quarantine outputs', 'succeeded'],
      ['stop processor', 'succeeded'],
    ]);
    await t.setFault('heavydb', null);
    await t.waitHealthy();
    await saveHistory(h.client, handle.workflowId, 'abort-after-quarantine', 'output-recovery');
  });

  it("a backend that is not the target's is InvalidInput before anything changes", async () => {
    const { t } = await corruptOutputs(h);
    const before = snapshot(t);
    const handle = await startRecovery(h, t, { backend: 'mysql' });
    const failure = await failureOf(handle);
    expect(failure.type).toBe(ErrorType.InvalidInput);
    expect(failure.message).toMatch(/backend: "mysql" is not a backend of this target/);
    expect(snapshot(t)).toEqual(before);
    expect(existsSync(join(t.workDir, 'output-recovery'))).toBe(false);
  });

  it('nothing corrupt: the plan says so and nothing is stopped', async () => {
    const t = (await corruptOutputs(h)).t;
    // only the intact runs: the recovery of the first run put everything right
    const first = await startRecovery(h, t, { replay: false });
    await approve(h, first);
    expect(((await first.result()) as RunbookResult).outcome).toBe('succeeded');
    const pid = (await t.stats()).pid;
    const second = (await (await startRecovery(h, t, { replay: false })).result()) as RunbookResult;
    expect(second.outcome).toBe('succeeded');
    expect(second.plan!.summary).toMatch(/^no corrupt outputs among 36 runs/);
    expect(stepOf(second, 'stop processor')).toMatchObject({ status: 'skipped' });
    expect((await t.stats()).pid).toBe(pid);
  });

  it('runs from the runbook CLI (dry run, start, approve) and from temporal workflow start', async () => {
    const { t } = await corruptOutputs(h);
    const args = ['--env', t.envName, '--target', 'jobs', '--requester', 'rita', '--reason', 'truncated summaries'];
    const dry = await runbook(['start', 'output-recovery', ...args, '--dry-run', '--wait'], h.env());
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/dry_run|DRY_RUN/i);
    const started = await runbook(['start', 'output-recovery', ...args, '--input', '{"replay":false}'], h.env());
    expect(started.code, started.stderr).toBe(0);
    const id = `output-recovery--${t.envName}--jobs`;
    await h.waitForApproval(h.client.workflow.getHandle(id));
    const approved = await runbook(['approve', id, '--by', 'alice'], h.env());
    expect(approved.code, approved.stderr).toBe(0);
    expect(((await h.client.workflow.getHandle(id).result()) as RunbookResult).outcome).toBe('succeeded');
    const status = await runbook(['status', id], h.env());
    expect(status.stdout).toContain('quarantine outputs');

    // the same with the temporal CLI: nothing corrupt any more, so no approval is needed
    const tid = `tctl-output-recovery-${h.taskQueue}`;
    const input = { environment: t.envName, target: 'jobs', requester: 'rita', reason: 'by hand', replay: false };
    const viaTemporal = await temporalStart(h, 'outputRecovery', tid, input);
    expect(viaTemporal.code, viaTemporal.stderr).toBe(0);
    const result = (await h.client.workflow.getHandle(tid).result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect(result.plan!.summary).toMatch(/^no corrupt outputs/);
  });

  it('replays exactly the jobs no backup restores, in a child jobReplay that shares the lock and the approval', async () => {
    const c = await corruptOutputs(h);
    const { t } = c;
    const before = snapshot(t);
    const handle = await startRecovery(h, t, { backend: 'parquet' });
    const status = await approve(h, handle);
    expect(status.plan!.details).toMatchObject({
      replay: { workflowType: 'jobReplay', jobs: 4, backend: 'parquet' },
      covers: [{ workflowType: 'jobReplay', digest: expect.stringMatching(/^[0-9a-f]{64}$/) }],
    });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome, result.error).toBe('succeeded');
    const child = (await h.client.workflow.getHandle(`${handle.workflowId}--replay`).result()) as RunbookResult;
    expect(child.outcome).toBe('succeeded');
    expect(stepOf(child, 'approval')!.result).toMatch(
      new RegExp(
        `^covered by the approved plan of output-recovery ${handle.workflowId} \\(plan [0-9a-f]{12}, approved by alice\\)$`,
      ),
    );
    expect(child.approval.parentCover).toMatchObject({ covered: true, approvedBy: ['alice'] });
    expect(child.locks).toEqual([
      expect.objectContaining({
        state: 'released',
        sharedWith: expect.objectContaining({ workflowId: handle.workflowId }),
      }),
    ]);
    // each affected job completed once more, carrying its replay key; no other job ran
    const replayed = t
      .logLines()
      .map((l) => / INFO Completed job (\S+) backend=(\S+) ms=\d+ output=\S+ replay=(\S+)$/.exec(l))
      .filter((m) => m && m[3] !== '-');
    expect(replayed.map((m) => m![1]!).sort()).toEqual(c.replayJobs);
    // on the backend the input named; the INI file is as it was afterwards
    expect(new Set(replayed.map((m) => m![2]))).toEqual(new Set(['parquet']));
    expect(t.readIni()).toBe(INITIAL_PROCESSOR_INI);
    expect(t.duplicates()).toBe(0);
    // outputs: the intact runs as they were, the restored ones from the backup, one new sound run per replayed job
    const after = snapshot(t);
    const kept = Object.entries(before.outputs).filter(([p]) => !Object.keys(c.corrupt).includes(p.split('/')[0]!));
    for (const [p, d] of kept) expect(after.outputs[p], p).toBe(d);
    for (const run of c.restorable)
      for (const [p, d] of Object.entries(before.backup)) if (p.startsWith(`${run}/`)) expect(after.outputs[p]).toBe(d);
    const fresh = t.outputs().filter((r) => !c.runs.includes(r.run));
    expect(fresh.map((r) => Object.keys(r.files)[0]!.slice('optimization_summary_'.length, -4)).sort()).toEqual(
      c.replayJobs,
    );
    // each summary names the tag of the child run's key for its job (`<child id>/<its first run id>/<job id>`)
    const childRun = (await h.client.workflow.getHandle(`${handle.workflowId}--replay`).describe()).runId;
    for (const r of fresh) {
      const id = Object.keys(r.files)[0]!.slice('optimization_summary_'.length, -4);
      const tag = replayTag(`${handle.workflowId}--replay/${childRun}/${id}`);
      expect(Object.values(r.files)[0]).toMatch(new RegExp(`\\nreplay: ${tag}\\nEND\\n$`));
    }
    expect(result.extra).toMatchObject({
      replay: { workflowId: `${handle.workflowId}--replay`, outcome: 'succeeded' },
    });
    await saveHistory(h.client, handle.workflowId, 'approve-with-replay', 'output-recovery');
  });

  it('a jobReplay started by hand for the same jobs waits for its own approval', async () => {
    const c = await corruptOutputs(h);
    const handle = await startRunbook(
      h,
      'job-replay',
      { environment: c.t.envName, target: 'jobs', jobs: c.replayJobs },
      `job-replay-by-hand-${h.taskQueue}`,
    );
    const waiting = await h.waitForApproval(handle);
    expect(waiting.approval.parentCover).toBeUndefined();
    expect(waiting.locks).toEqual([expect.objectContaining({ state: 'held' })]);
    expect(waiting.locks![0]!.sharedWith).toBeUndefined();
    await handle.signal(rejectSignal, { by: 'bob', planHash: waiting.planHash! });
    expect(((await handle.result()) as RunbookResult).outcome).toBe('rejected');
  });
});
