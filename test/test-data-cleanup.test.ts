import { existsSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createCleanupActivities, type Identification } from '../src/activities/cleanup/index.js';
import { ErrorType } from '../src/shared/constants.js';
import { abortSignal, approveSignal } from '../src/shared/messages.js';
import type { RunbookResult, RunbookStatus } from '../src/shared/types.js';
import { cleanupTarget, harnessWithPool, TEST_COUNTS, type CleanupTestTarget } from './support/cleanup.js';
import { Harness } from './support/harness.js';
import { saveHistory } from './support/histories.js';
import { startRunbook } from './support/sqlite.js';

/** test-data-cleanup (seed scenario 3) against the suite's real Postgres, one schema per test. */
const h = new Harness();
const db = harnessWithPool(h);

const start = (t: CleanupTestTarget, input: Record<string, unknown> = {}, id?: string) =>
  startRunbook(h, 'test-data-cleanup', { environment: t.envName, target: 'cleanup', ...input }, id);

async function failureOf(handle: WorkflowHandle): Promise<{ failure: ApplicationFailure; result: RunbookResult }> {
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const failure = (err as WorkflowFailedError).cause as ApplicationFailure;
  return { failure, result: failure.details![0] as RunbookResult };
}

const counts = (s: RunbookStatus, schema: string) =>
  Object.fromEntries(
    Object.entries(s.plan!.details!.counts as Record<string, number>).map(([k, v]) => [k.replace(`${schema}.`, ''), v]),
  );

/** The snapshot without the seed's test rows: what must be left after a cleanup. */
function withoutTestRows(snapshot: Record<string, string[]>): Record<string, string[]> {
  const test = (row: string, field: string, ids: number[]) => ids.includes(JSON.parse(row)[field]);
  const vnext = [11, 12, 13];
  const legacy = [111, 112, 113];
  return {
    organizations_team: snapshot.organizations_team!.filter((r) => !test(r, 'id', vnext)),
    organizations_teammembership: snapshot.organizations_teammembership!.filter((r) => !test(r, 'team_id', vnext)),
    organizations_teammigrationmap: snapshot.organizations_teammigrationmap!.filter(
      (r) => !test(r, 'vnext_team_id', vnext),
    ),
    teams_team: snapshot.teams_team!.filter((r) => !test(r, 'id', legacy)),
    teams_teammembership: snapshot.teams_teammembership!.filter((r) => !test(r, 'team_id', legacy)),
  };
}

describe('test-data cleanup', () => {
  it('deletes exactly the approved set in one transaction; real rows and the orphan baseline untouched', async () => {
    const t = await cleanupTarget(h, db());
    const before = await t.snapshot();
    const id = `test-data-cleanup-approve-${h.taskQueue}`;
    const handle = await start(t, {}, id);
    const waiting = await h.waitForApproval(handle);
    expect(counts(waiting, t.schema)).toEqual(TEST_COUNTS);
    const details = waiting.plan!.details!;
    expect(details.order).toEqual(
      [
        'organizations_teammembership',
        'organizations_teammigrationmap',
        'teams_teammembership',
        'organizations_team',
        'teams_team',
      ].map(t.t),
    );
    expect((details.sample as Record<string, unknown[]>)[t.t('organizations_team')]).toEqual([
      { key: '11', label: 'Staging Test Alpha' },
      { key: '12', label: 'Staging Test Beta' },
      { key: '13', label: 'Dual Write Test Team' },
    ]);
    expect(Object.values(details.orphansBefore as Record<string, number>)).toEqual([0, 0, 1, 0]);
    // the id set is in a private file named by its digest; only the digest is in the plan
    const idsDigest = details.idsDigest as string;
    expect(readdirSync(t.workDir)).toEqual([`ids-${idsDigest}.json`]);
    expect(JSON.stringify(waiting.plan)).not.toContain('"1004"');

    await handle.signal(approveSignal, { by: 'alice', planHash: waiting.planHash! });
    const result = (await handle.result()) as RunbookResult;
    await saveHistory(h.client, id, 'approve-path', 'test-data-cleanup');
    expect(result.outcome, result.error).toBe('succeeded');
    expect(result.steps.map((s) => [s.name, s.status])).toEqual([
      ['lock target', 'succeeded'],
      ['load environment', 'succeeded'],
      ['identify', 'succeeded'],
      ['seal plan', 'succeeded'],
      ['approval', 'succeeded'],
      ['export rows', 'succeeded'],
      ['delete in one transaction', 'succeeded'],
      ['verify', 'succeeded'],
    ]);
    expect(result.steps.find((s) => s.name === 'delete in one transaction')!.result).toMatch(/^committed: /);
    const deleted = (result.extra!.deleted as Record<string, number>) ?? {};
    expect(Object.values(deleted).reduce((a, b) => a + b, 0)).toBe(27);
    expect(await t.snapshot()).toEqual(withoutTestRows(before));
    expect(withoutTestRows(before).organizations_team).toHaveLength(4);

    // a second run finds nothing: no approval asked, nothing written, nothing changed
    const files = readdirSync(t.workDir).sort();
    const again = (await (await start(t)).result()) as RunbookResult;
    expect(again.outcome).toBe('succeeded');
    expect(again.plan!.summary).toMatch(/^no test data matches on .*: nothing to delete$/);
    expect(again.steps.find((s) => s.name === 'approval')).toMatchObject({
      status: 'skipped',
      result: 'nothing selected',
    });
    expect(readdirSync(t.workDir).sort()).toEqual(files);
  });

  it('a row added to the set after the identification: counts differ, ROLLBACK, nothing deleted (CleanupRolledBack)', async () => {
    const t = await cleanupTarget(h, db());
    const handle = await start(t);
    const waiting = await h.waitForApproval(handle);
    // a new membership of a test team appears before the delete
    await db().query(
      `INSERT INTO "${t.schema}".organizations_teammembership (id, team_id, user_id, role) VALUES (5000, 12, 9999, 'member')`,
    );
    const before = await t.snapshot();
    await handle.signal(approveSignal, { by: 'alice', planHash: waiting.planHash! });
    const { failure, result } = await failureOf(handle);
    expect(failure.type).toBe(ErrorType.CleanupRolledBack);
    expect(failure.message).toContain(
      `rolled back, nothing deleted: the selection differs from the approved set: ${t.t('organizations_teammembership')}: now 10, approved 9 (+1 not approved: 5000)`,
    );
    const step = result.steps.find((s) => s.name === 'delete in one transaction')!;
    expect(step.error).toContain('rolled back, nothing deleted');
    expect(result.steps.find((s) => s.name === 'verify')!.status).toBe('skipped');
    // the undo ran and found no commit of this run: it re-inserted nothing
    expect(result.compensations.map((c) => [c.step, c.status])).toEqual([['delete in one transaction', 'succeeded']]);
    expect(result.extra!.undo).toEqual({ state: 'nothing committed', inserted: {} });
    expect(await t.snapshot()).toEqual(before);
  });

  it('a foreign key the configuration does not name refuses the delete: ROLLBACK, nothing deleted (CleanupRolledBack)', async () => {
    // legacy memberships reference legacy teams in the database, but the configuration forgot that relation
    const t = await cleanupTarget(h, db(), (s) => {
      s.relations = (s.relations as Array<{ table: string }>).filter((r) => !r.table.endsWith('.teams_teammembership'));
    });
    const handle = await start(t);
    const waiting = await h.waitForApproval(handle);
    expect(counts(waiting, t.schema)).toEqual({ ...TEST_COUNTS, teams_teammembership: 0 });
    const before = await t.snapshot();
    await handle.signal(approveSignal, { by: 'alice', planHash: waiting.planHash! });
    const { failure, result } = await failureOf(handle);
    expect(failure.type).toBe(ErrorType.CleanupRolledBack);
    expect(failure.message).toMatch(/rolled back, nothing deleted: .*teams_teammembership.* \(23503\)/);
    expect(result.extra!.undo).toEqual({ state: 'nothing committed', inserted: {} });
    expect(await t.snapshot()).toEqual(before);
  });

  it('a verify that fails after the commit: the undo re-inserts every row byte-identical', async () => {
    const t = await cleanupTarget(h, db());
    const handle = await start(t, {}, `test-data-cleanup-undo-${h.taskQueue}`);
    const waiting = await h.waitForApproval(handle);
    // an orphaned mapping of a real team appears meanwhile: the orphans are not back at their baseline after
    await db().query(
      `INSERT INTO "${t.schema}".organizations_teammigrationmap (id, vnext_team_id, legacy_team_id) VALUES (998, 1, 4242)`,
    );
    const before = await t.snapshot();
    await handle.signal(approveSignal, { by: 'alice', planHash: waiting.planHash! });
    const { failure, result } = await failureOf(handle);
    await saveHistory(h.client, handle.workflowId, 'verify-fails-undo', 'test-data-cleanup');
    expect(failure.type).toBe(ErrorType.RunbookFailed);
    expect(result.steps.find((s) => s.name === 'delete in one transaction')).toMatchObject({ status: 'compensated' });
    const verify = result.steps.find((s) => s.name === 'verify')!;
    expect(verify.status).toBe('failed');
    expect(verify.error).toContain(
      `${t.t('organizations_teammigrationmap')}.legacy_team_id → ${t.t('teams_team')}.id: 2 orphans, 1 before the run`,
    );
    expect(result.compensations.map((c) => [c.step, c.status])).toEqual([['delete in one transaction', 'succeeded']]);
    expect(Object.values((result.extra!.undo as { inserted: Record<string, number> }).inserted)).toEqual([
      3, 3, 9, 3, 9,
    ]);
    expect(await t.snapshot()).toEqual(before);
  });

  it('abort while the delete waits on a row lock: the delete commits after the abort, the undo puts every row back', async () => {
    const t = await cleanupTarget(h, db());
    const before = await t.snapshot();
    const handle = await start(t, {}, `test-data-cleanup-abort-${h.taskQueue}`);
    const waiting = await h.waitForApproval(handle);
    // someone holds a test team's row: the delete's FOR UPDATE waits for it (a plain read does not)
    const holder = await db().connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT id FROM "${t.schema}".organizations_team WHERE id = 11 FOR UPDATE`);
      await handle.signal(approveSignal, { by: 'alice', planHash: waiting.planHash! });
      await h.waitFor(handle, (s) => s.currentStep === 'delete in one transaction');
      // the delete's transaction waits for the lock (its FOR UPDATE on the test's schema)
      for (let i = 0; ; i++) {
        const r = await db().query(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`,
          [`%"${t.schema}"%FOR UPDATE%`],
        );
        if (r.rows[0].n > 0) break;
        if (i > 300) throw new Error('the delete never waited for the row lock');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await handle.signal(abortSignal, { by: 'bob', reason: 'wrong environment' });
      await h.waitFor(handle, (s) => Boolean(s.abort));
    } finally {
      await holder.query('COMMIT');
      holder.release();
    }
    const result = (await handle.result().catch((e: WorkflowFailedError) => e)) as RunbookResult | WorkflowFailedError;
    const end =
      result instanceof WorkflowFailedError
        ? ((result.cause as ApplicationFailure).details![0] as RunbookResult)
        : result;
    await saveHistory(h.client, handle.workflowId, 'abort-during-delete', 'test-data-cleanup');
    expect(end.outcome).toBe('aborted');
    expect(end.extra!.undo).toMatchObject({ state: 'restored' });
    expect(await t.snapshot()).toEqual(before);
  });

  it('activities: a second delete after the commit changes nothing; the undo is per run and idempotent', async () => {
    const t = await cleanupTarget(h, db());
    const acts = createCleanupActivities({ environmentsDir: h.environmentsDir, stores: h.stores });
    const ref = { environment: t.envName, target: 'cleanup' };
    const inRun = <R>(runId: string, fn: () => Promise<R>) =>
      new MockActivityEnvironment({ workflowExecution: { workflowId: 'w', runId } }).run<[], R, () => Promise<R>>(fn);
    const before = await t.snapshot();
    const found = await inRun('r1', () => acts.identifyTestData({ ...ref, maxRows: 100, dryRun: false }));
    expect(found.total).toBe(27);
    const { exportDigest } = await inRun('r1', () => acts.exportTestData({ ...ref, idsDigest: found.idsDigest }));
    const args = { ...ref, idsDigest: found.idsDigest, exportDigest };
    expect((await inRun('r1', () => acts.deleteTestData(args))).state).toBe('committed');
    const after = await t.snapshot();
    expect(after).toEqual(withoutTestRows(before));
    // the activity ran again (its completion was lost): it finds its own commit and does nothing
    expect(await inRun('r1', () => acts.deleteTestData(args))).toMatchObject({ state: 'already committed' });
    expect(await t.snapshot()).toEqual(after);
    // another run's undo did not commit anything: it re-inserts nothing
    expect(await inRun('r2', () => acts.restoreTestData({ ...ref, exportDigest }))).toEqual({
      state: 'nothing committed',
      inserted: {},
    });
    expect(await t.snapshot()).toEqual(after);
    const restored = await inRun('r1', () => acts.restoreTestData({ ...ref, exportDigest }));
    expect(restored.state).toBe('restored');
    expect(await t.snapshot()).toEqual(before);
    // twice: ON CONFLICT DO NOTHING, nothing more
    const again = await inRun('r1', () => acts.restoreTestData({ ...ref, exportDigest }));
    expect(Object.values(again.inserted).every((n) => n === 0)).toBe(true);
    expect(await t.snapshot()).toEqual(before);
    await acts.verifyCleanup({ ...args, orphans: found.orphans }).then(
      () => expect.fail('verify passed with the rows back'),
      (e: ApplicationFailure) => expect(e.type).toBe(ErrorType.VerificationFailed),
    );
  });

  it('predicates: ILIKE and a creation window select through the relations; a dry-run identification writes nothing', async () => {
    const t = await cleanupTarget(h, db(), (s, schema) => {
      s.tables[`${schema}.organizations_team`].where = {
        // "testarossa racing" (a real team, created 2026-01-04) matches the pattern but not the window
        any: [{ ilike: '%test%', column: 'name' }],
        all: [
          { column: 'created_at', after: '2026-01-03T00:00:00Z' },
          { column: 'created_at', before: '2026-01-13T00:00:00Z' },
          { column: 'created_at', within: '3650d' },
        ],
      };
    });
    const acts = createCleanupActivities({ environmentsDir: h.environmentsDir, stores: h.stores });
    const found: Identification = await new MockActivityEnvironment().run(() =>
      acts.identifyTestData({ environment: t.envName, target: 'cleanup', maxRows: 100, dryRun: true }),
    );
    // teams 4 (Testarossa, 2026-01-04), 11 and 12 (13 was created on 2026-01-13)
    expect(found.sample[t.t('organizations_team')]!.map((r) => r.label)).toEqual([
      'Testarossa Racing',
      'Staging Test Alpha',
      'Staging Test Beta',
    ]);
    expect(found.counts[t.t('organizations_teammembership')]).toBe(3 + 4 + 2);
    expect(found.counts[t.t('teams_team')]).toBe(3);
    expect(found.written).toBe(false);
    expect(existsSync(t.workDir)).toBe(false);
  });

  it('invalid configuration or input: EnvironmentInvalid / InvalidInput naming the field, nothing changed', async () => {
    const cases: Array<[string, (s: Record<string, any>, schema: string) => void, RegExp]> = [
      [
        'a predicate column that is not an identifier',
        (s, schema) => {
          s.tables[`${schema}.organizations_team`].where.any[0].column = 'name; DROP TABLE x';
        },
        /tables\.cleanup_\d+_\d+\.organizations_team\.where\.any\.0\.column: must be an SQL identifier/,
      ],
      [
        'a relation cycle',
        (s, schema) => {
          s.relations.push({
            table: `${schema}.organizations_team`,
            column: 'id',
            references: `${schema}.organizations_teammembership`,
          });
        },
        /relations: form a cycle through cleanup_\d+_\d+\.organizations_team, cleanup_\d+_\d+\.organizations_teammembership:/,
      ],
      [
        'a column the table does not have',
        (s, schema) => {
          s.tables[`${schema}.teams_team`].label = 'title';
        },
        /tables\.cleanup_\d+_\d+\.teams_team\.label: table cleanup_\d+_\d+\.teams_team has no column "title"/,
      ],
    ];
    for (const [name, mutate, message] of cases) {
      const t = await cleanupTarget(h, db(), mutate);
      const before = await t.snapshot();
      const { failure, result } = await failureOf(await start(t));
      expect(failure.message, name).toMatch(message);
      // the file itself is invalid: the lock step (which reads it) fails; a missing column: loading the target
      const failed = result.steps.filter((s) => s.status === 'failed').map((s) => s.name);
      expect(failed, name).toEqual([name.includes('column the table') ? 'load environment' : 'lock target']);
      expect(await t.snapshot(), name).toEqual(before);
      expect(existsSync(t.workDir), name).toBe(false);
    }
    // input may only tighten the environment's maxRows
    const t = await cleanupTarget(h, db());
    const { failure } = await failureOf(await start(t, { maxRows: 20_000 }));
    expect(failure.type).toBe(ErrorType.InvalidInput);
    expect(failure.message).toContain("maxRows: 20000 exceeds the environment's 10000");
    // and a selection larger than maxRows is refused before anything is written
    const small = await failureOf(await start(t, { maxRows: 10 }));
    expect(small.failure.message).toContain('the selection exceeds maxRows (10)');
    expect(existsSync(t.workDir)).toBe(false);
  });
});
