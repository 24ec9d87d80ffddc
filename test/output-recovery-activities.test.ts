import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOutputActivities } from '../src/activities/migration/outputs.js';
import { ErrorType } from '../src/shared/constants.js';
import { Harness } from './support/harness.js';
import { corruptOutputs, snapshot } from './support/output-recovery.js';

// The recovery activities on their own, each run twice as a retry would (no workflow, no worker).

const h = new Harness();
beforeAll(() => h.start({ worker: false }));
afterAll(() => h.close());

const failureType = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (err: unknown) => (err instanceof ApplicationFailure ? err.type : String(err)),
  );

/** Corrupt outputs with the processor stopped, and the activities as a worker builds them. */
async function atRest() {
  const c = await corruptOutputs(h);
  await c.t.stopService();
  const acts = createOutputActivities({ environmentsDir: h.environmentsDir, log: pino({ level: 'silent' }) });
  return { c, t: c.t, acts, ref: { environment: c.t.envName, target: 'jobs' } };
}

describe('output recovery activities', () => {
  it('quarantine, restore and their undos are idempotent and end where they began', async () => {
    const { c, t, acts, ref } = await atRest();
    const before = snapshot(t);
    const later = new Date(Date.now() + 60_000).toISOString();
    expect(await acts.detectCorruptOutputs({ ...ref, dryRun: true, since: later })).toMatchObject({ total: 0 });
    const plan = await acts.detectCorruptOutputs({ ...ref, dryRun: false });
    expect(plan).toMatchObject({ total: 7, restorable: 3, replayJobs: c.replayJobs, file: { total: 7 } });
    const planRef = { ...ref, plan: plan.sha256 };

    expect(await acts.quarantineOutputs({ ...planRef, workflowId: 'w' })).toMatchObject({ moved: 7, already: 0 });
    expect(await acts.quarantineOutputs({ ...planRef, workflowId: 'w' })).toMatchObject({ moved: 0, already: 7 });
    expect(await acts.restoreOutputs(planRef)).toEqual({ restored: 3, already: 0 });
    expect(await acts.restoreOutputs(planRef)).toEqual({ restored: 0, already: 3 });
    await expect(acts.verifyRecoveredOutputs({ ...planRef, replayed: false })).resolves.toEqual({
      restoredSound: 3,
      replayedWithOutput: 0,
    });
    // the replayed jobs have no output yet
    expect(await failureType(acts.verifyRecoveredOutputs({ ...planRef, replayed: true }))).toBe(
      ErrorType.VerificationFailed,
    );

    expect(await acts.removeRestoredOutputs(planRef)).toEqual({ removed: 3 });
    expect(await acts.removeRestoredOutputs(planRef)).toEqual({ removed: 0 });
    expect(await acts.releaseQuarantine(planRef)).toEqual({ movedBack: 7 });
    expect(await acts.releaseQuarantine(planRef)).toEqual({ movedBack: 0 });
    expect({ ...snapshot(t), work: {} }).toEqual({ ...before, work: {} });
  });

  it('a run changed since the plan stops the quarantine before anything moves (PlanStale)', async () => {
    const { c, t, acts, ref } = await atRest();
    const plan = await acts.detectCorruptOutputs({ ...ref, dryRun: false });
    const last = Object.keys(c.corrupt).sort().at(-1)!;
    writeFileSync(join(t.outputDir, last, 'note.txt'), 'written after the plan\n');
    const before = snapshot(t);
    expect(await failureType(acts.quarantineOutputs({ ...ref, plan: plan.sha256, workflowId: 'w' }))).toBe(
      ErrorType.PlanStale,
    );
    expect(snapshot(t)).toEqual(before);
    // a plan file changed after approval is refused as well
    writeFileSync(plan.file!.path, '{}\n');
    expect(await failureType(acts.restoreOutputs({ ...ref, plan: plan.sha256 }))).toBe(ErrorType.EvidenceMismatch);
  });
});
