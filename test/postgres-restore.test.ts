import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manifestPath } from '../src/activities/sqlite/backup-files.js';
import { ErrorType } from '../src/shared/constants.js';
import { abortSignal } from '../src/shared/messages.js';
import type { RunbookResult } from '../src/shared/types.js';
import { readCalls } from './fakes/make-fake.js';
import { readKubectlState } from './fakes/fake-kubectl.js';
import { Harness } from './support/harness.js';
import { saveHistory } from './support/histories.js';
import { addTeams, pgBackup, pgTarget, startPgRunbook, type PgTestTarget } from './support/postgres.js';
import { approve, evidenceOf, failureOf } from './support/sqlite-recovery.js';

const h = new Harness();
beforeAll(() => h.start());
afterAll(() => h.close());

/** what an operator sees, in order (the test's own list: a step renamed or moved in the runbook fails here) */
const STEPS = [
  'lock target',
  'load environment',
  'choose backup',
  'baseline counts',
  'seal plan',
  'approval',
  'stop application',
  'safety dump',
  'restore into new database',
  'validate restore',
  'swap',
  'start application',
  'health',
  'compare counts',
];

const replicasOf = (t: PgTestTarget) =>
  (readKubectlState(t.kubeDir).deployments[`${t.namespace}/teams-api`] as { spec: { replicas: number } }).spec.replicas;
const scales = (t: PgTestTarget) =>
  readCalls(t.kubeDir, 'kubectl')
    .filter((c) => c[0] === 'scale' && c.includes(t.namespace))
    .map((c) => c.at(-1));

/** The failure types of the run's failed activities. */
const activityFailureTypes = async (handle: WorkflowHandle) =>
  (await handle.fetchHistory())
    .events!.filter((e) => e.activityTaskFailedEventAttributes)
    .map((e) => e.activityTaskFailedEventAttributes!.failure!.applicationFailureInfo?.type);

/** A second backup taken after the first whose bytes are then damaged (same size: only its digest tells). */
async function corruptNewerBackup(t: PgTestTarget): Promise<string> {
  const file = await pgBackup(h, t, { tag: 'newer' });
  const path = join(t.backupsDir, file);
  const bytes = readFileSync(path);
  bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
  writeFileSync(path, bytes);
  return file;
}

describe('postgres-restore', () => {
  it('restores the newest verified backup into a new database, swaps it in, keeps the old one, restarts to 3 replicas', async () => {
    const t = await pgTarget(h, { rows: 80, compare: { within: 25 } });
    const good = await pgBackup(h, t);
    await addTeams(t, 1000, 20); // after the backup: the restore takes these back
    const bad = await corruptNewerBackup(t);
    // an unsigned one, newer still
    const unsigned = await pgBackup(h, t, { tag: 'unsigned' });
    const m = JSON.parse(readFileSync(manifestPath(t.backupsDir, unsigned), 'utf8'));
    delete m.signature;
    writeFileSync(manifestPath(t.backupsDir, unsigned), JSON.stringify(m));

    const handle = await startPgRunbook(h, 'postgres-restore', t);
    const status = await approve(h, handle);
    expect(status.plan!.summary).toMatch(new RegExp(`^restore ${t.database} from ${good} taken `));
    expect(status.plan!.details!.skipped).toEqual([
      { file: unsigned, reason: 'manifest is not signed' },
      { file: bad, reason: expect.stringMatching(/^sha256 .* does not match its manifest/) },
    ]);
    expect(status.plan!.details!.baseline).toEqual({ vnext_teams: 100, legacy_teams: 92, mappings: 100 });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect(result.steps.map((s) => [s.name, s.status])).toEqual(STEPS.map((s) => [s, 'succeeded']));

    const extra = result.extra as { previousDatabase: string; counts: unknown[]; safetyDump: { file: string } };
    expect(extra.previousDatabase).toMatch(new RegExp(`^${t.database}_pre_[a-z0-9]{8}$`));
    // the live name holds the backup's rows; the old database is kept with every row it had
    expect(await t.count('organizations_team')).toBe(80);
    expect(await t.count('organizations_team', extra.previousDatabase)).toBe(100);
    expect(await t.databases()).toEqual([t.database, extra.previousDatabase]);
    expect(extra.counts).toEqual([
      { name: 'vnext_teams', before: 100, after: 80, allowed: 25, ok: true },
      { name: 'legacy_teams', before: 92, after: 72, allowed: 25, ok: true },
      { name: 'mappings', before: 100, after: 80, allowed: 25, ok: true },
    ]);
    expect(existsSync(extra.safetyDump.file)).toBe(true);
    // stopped by scaling to 0, started again at the 3 replicas it had
    expect(scales(t)).toEqual(['--replicas=0', '--replicas=3']);
    expect(replicasOf(t)).toBe(3);
    expect(evidenceOf(result).extra).toMatchObject({ previousDatabase: extra.previousDatabase });
    await saveHistory(h.client, handle.workflowId, 'approve-path', 'postgres-restore');
  });

  it('fails when the counts differ from the baseline more than configured, and swaps the original back', async () => {
    const t = await pgTarget(h, { rows: 40, compare: 'equal' });
    await pgBackup(h, t);
    await addTeams(t, 500, 3);
    const handle = await startPgRunbook(h, 'postgres-restore', t);
    await approve(h, handle);
    const failure = await failureOf(handle);
    expect(failure.type).toBe(ErrorType.RunbookFailed);
    expect(await activityFailureTypes(handle)).toEqual([ErrorType.VerificationFailed]);
    expect(failure.message).toMatch(/vnext_teams 43 → 40 \(allowed ±0\)/);
    const steps = Object.fromEntries(failure.result!.steps.map((s) => [s.name, s.status]));
    expect(steps).toMatchObject({ swap: 'compensated', 'compare counts': 'failed' });
    expect(await t.count('organizations_team')).toBe(43);
    expect(await t.databases()).toEqual([t.database]);
    expect(replicasOf(t)).toBe(3);
  });

  it('an abort after the swap puts the original database back under its name with its rows', async () => {
    const t = await pgTarget(h, { rows: 30, compare: { within: 100 } });
    const backup = await pgBackup(h, t);
    await addTeams(t, 700, 5);
    t.setHealth(503); // the run waits at the health check, after the swap
    const handle = await startPgRunbook(h, 'postgres-restore', t, { backup });
    await approve(h, handle);
    await h.waitFor(handle, (s) => s.steps.find((x) => x.name === 'swap')?.status === 'succeeded');
    expect(await t.count('organizations_team')).toBe(30);
    await handle.signal(abortSignal, { by: 'carol', reason: 'restored the wrong backup' });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('aborted');
    const steps = Object.fromEntries(result.steps.map((s) => [s.name, s.status]));
    expect(steps).toMatchObject({
      swap: 'compensated',
      'restore into new database': 'compensated',
      'stop application': 'compensated',
    });
    expect(await t.count('organizations_team')).toBe(35);
    expect(await t.count('teams_team')).toBe(35);
    expect(await t.databases()).toEqual([t.database]);
    expect(replicasOf(t)).toBe(3);
    expect((result.extra as { swappedBack: boolean }).swappedBack).toBe(true);
    await saveHistory(h.client, handle.workflowId, 'abort-after-swap', 'postgres-restore');
  });

  it('invalid input names the field and changes nothing', async () => {
    const t = await pgTarget(h, { rows: 10 });
    await pgBackup(h, t);
    const before = { dbs: await t.databases(), calls: readCalls(t.kubeDir, 'kubectl').length };
    for (const [input, field] of [
      [{ before: 'yesterday' }, 'before'],
      [{ backup: '../etc/passwd.dump' }, 'backup'],
    ] as const) {
      const failure = await failureOf(await startPgRunbook(h, 'postgres-restore', t, input));
      expect(failure.type).toBe(ErrorType.InvalidInput);
      expect(failure.message).toContain(`${field}:`);
    }
    expect({ dbs: await t.databases(), calls: readCalls(t.kubeDir, 'kubectl').length }).toEqual(before);
    expect(await t.count('organizations_team')).toBe(10);
  });

  it('with before, chooses the newest verified backup taken before that time', async () => {
    const t = await pgTarget(h, { rows: 10 });
    const older = await pgBackup(h, t, { tag: 'older' });
    const cut = new Date(
      Date.parse(JSON.parse(readFileSync(manifestPath(t.backupsDir, older), 'utf8')).createdAt) + 1,
    ).toISOString();
    await new Promise((r) => setTimeout(r, 1100));
    await pgBackup(h, t, { tag: 'newer' });
    const handle = await startPgRunbook(h, 'postgres-restore', t, { before: cut, dryRun: true });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('dry_run');
    expect((result.plan!.details!.backup as { file: string }).file).toBe(older);
  });
});
