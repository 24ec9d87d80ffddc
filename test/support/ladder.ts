import { readFileSync, writeFileSync } from 'node:fs';
import pino from 'pino';
import { expect } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import { createMigrationActivities } from '../../src/activities/migration/index.js';
import type { EmergencyLadderInput } from '../../src/shared/schemas/migration-inputs.js';
import type { RunbookResult, RunbookStatus } from '../../src/shared/types.js';
import type { Harness } from './harness.js';
import type { Backend, JobTestTarget } from './migration.js';

// The emergency ladder's tests on the demo job processor (test/emergency-ladder*.test.ts): its environment
// section, configurations that break the processor, faults that survive a restart, starting a run.

let counter = 0;

/** The emergency section of a test target: short health waits, the levels' approvals as given. */
export const emergency = (levels: Record<string, unknown> = {}) => ({
  emergency: {
    set: {
      'data_backend.primary': 'heavydb',
      'data_backend.dual_write': 'false',
      'data_backend.cutover_percent': '0',
      'data_backend.phase': 'primary-only',
    },
    levels: { restart: 'automatic', lastKnownGood: 'automatic', emergencyConfig: 'automatic', ...levels },
    healthWithin: '3s',
  },
});

type IniKey = 'primary' | 'secondary' | 'dual_write' | 'cutover_percent' | 'phase';

/** The processor's INI with [data_backend] set to these values (everything else as written). */
export function withBackend(t: JobTestTarget, values: Partial<Record<IniKey, string>>): string {
  let text = t.readIni();
  for (const [key, value] of Object.entries(values))
    text = text.replace(new RegExp(`^${key} = .*$`, 'm'), `${key} = ${value}`);
  return text;
}

/** Faults that survive a restart: the processor re-reads its faults file. */
export function faults(t: JobTestTarget, f: Partial<Record<Backend, { mode: 'fail' }>>): void {
  writeFileSync(t.faultsFile, JSON.stringify(f));
}

/** The INI as it is now is the last known good; then `broken` is written and the processor reloads it. */
export async function saveGoodThenBreak(h: Harness, t: JobTestTarget, broken: string): Promise<Buffer> {
  const acts = createMigrationActivities({ environmentsDir: h.environmentsDir, log: pino({ level: 'silent' }) });
  await acts.snapshotLastKnownGood({ environment: t.envName, target: 'jobs' });
  const good = t.iniBytes();
  t.writeIni(broken);
  await t.reload();
  return good;
}

export function startLadder(
  h: Harness,
  t: JobTestTarget,
  input: Partial<EmergencyLadderInput> = {},
): Promise<WorkflowHandle> {
  return h.client.workflow.start('emergencyLadder', {
    taskQueue: h.taskQueue,
    workflowId: `ladder-${h.taskQueue}-${counter++}`,
    args: [{ environment: t.envName, target: 'jobs', requester: 'rita', reason: 'jobs failing', ...input }],
  });
}

export const ladderOf = (r: RunbookResult) => r.extra!.ladder as Record<string, any>;
export const stepStatus = (s: RunbookStatus, name: string) => s.steps.find((x) => x.name === name)?.status;
export const evidenceOf = (r: RunbookResult) => JSON.parse(readFileSync(r.evidence!.path, 'utf8'));

/** Waits until the processor answers 503 (a reload is asynchronous). */
export async function unhealthy(t: JobTestTarget): Promise<void> {
  for (let i = 0; i < 100 && (await t.health()).status === 200; i++) await new Promise((r) => setTimeout(r, 50));
  expect((await t.health()).status).toBe(503);
}
