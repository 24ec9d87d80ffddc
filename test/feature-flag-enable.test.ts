import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import { approveSignal } from '../src/shared/messages.js';
import type { RunbookResult } from '../src/shared/types.js';
import { Harness, type DemoTarget } from './support/harness.js';
import { saveHistory } from './support/histories.js';
import { failureOf } from './support/triage.js';

const h = new Harness();
beforeAll(() => h.start());
afterAll(() => h.close());

const DUAL = 'TEAM_VNEXT_DUAL_WRITE_ENABLED';

/** A demo target after a rollback: dual write off, in the file and live. */
async function dualWriteOff(): Promise<{ t: DemoTarget; off: string }> {
  const t = await h.demoTarget();
  const off = t.initialFlags.replace(`${DUAL}=true`, `${DUAL}=false`);
  writeFileSync(t.envFile, off);
  await t.service.reload();
  for (let i = 0; (await t.liveFlags())[DUAL] !== 'false'; i++) {
    if (i > 100) throw new Error('flags not reloaded');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { t, off };
}

async function approve(handle: WorkflowHandle): Promise<void> {
  const status = await h.waitForApproval(handle);
  await handle.signal(approveSignal, { by: 'alice', planHash: status.planHash! });
}

describe('feature-flag rollback, enable-dual-write: turn it back on, soak, verify', () => {
  it('re-enables dual write; the soak sees health and dual writes again', async () => {
    const { t } = await dualWriteOff();
    const handle = await h.startRun({ environment: t.envName, mode: 'enable-dual-write' });
    await approve(handle);
    // traffic while it soaks: dual writes must show up again
    let done = false;
    const result = handle.result().finally(() => (done = true)) as Promise<RunbookResult>;
    while (!done) await t.write(1).then(() => new Promise((r) => setTimeout(r, 200)));
    const r = await result;
    expect(r.outcome).toBe('succeeded');
    expect(r.steps.map((s) => [s.name, s.status])).toEqual([
      ['lock target', 'succeeded'],
      ['load environment', 'succeeded'],
      ['read current flags', 'succeeded'],
      ['seal plan', 'succeeded'],
      ['approval', 'succeeded'],
      ['set flags', 'succeeded'],
      ['reload service', 'succeeded'],
      ['verify flags live', 'succeeded'],
      ['verify health', 'succeeded'],
      ['soak', 'succeeded'],
      ['notify', 'succeeded'],
    ]);
    expect(r.steps.find((s) => s.name === 'soak')!.result).toMatch(/, [1-9]\d* dual writes seen$/);
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);
    expect((await t.liveFlags())[DUAL]).toBe('true');
    await saveHistory(h.client, handle.workflowId, 'enable-dual-write', 'feature-flag-rollback');
  });

  it('dual writes never resume: the soak fails and dual write is off again (its undo ran)', async () => {
    const { t, off } = await dualWriteOff();
    const handle = await h.startRun({ environment: t.envName, mode: 'enable-dual-write' });
    await approve(handle);
    const { type, result } = await failureOf(handle);
    expect(type).toBe('RunbookFailed');
    expect(result.steps.find((s) => s.name === 'soak')).toMatchObject({ status: 'failed' });
    expect(result.steps.find((s) => s.name === 'soak')!.error).toMatch(
      /soak: no "dual_write_scheduled" line .* dual writes did not resume/,
    );
    expect(result.compensations.map((c) => [c.step, c.status])).toEqual([['set flags', 'succeeded']]);
    expect(readFileSync(t.envFile, 'utf8')).toBe(off);
    expect((await t.liveFlags())[DUAL]).toBe('false');
  });
});
