import type pg from 'pg';
import { beforeEach, describe, expect, it } from 'vitest';
import { PostgresJobSource } from '../src/activities/migration/jobs/index.js';
import type { SpoolHook } from '../src/activities/migration/jobs/spool-batch.js';
import { replayTag } from '../src/activities/migration/jobs/spool-names.js';
import type { RequeueOutcome, RequeueRequest } from '../src/activities/migration/types.js';
import { postgresSubject, spoolSubject, workQueue, type Subject } from './support/job-sources.js';

/**
 * Two attempts of one requeue batch at once: a heartbeat timeout makes Temporal start a retry while the first attempt
 * still runs. And attempts that die between two steps. Each job is queued exactly once (the processor claims it
 * once) and none is lost, for every job source.
 */

const key = (id: string) => `wf/run/${id}`;
const idsOf = (n: number, prefix: string) =>
  Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(4, '0')}`);
const jobsOf = (ids: string[]): RequeueRequest[] => ids.map((id) => ({ id, from: 'failed', key: key(id) }));

/** every job claimed once by the processor, now failed with its key, one copy; nothing left staged */
async function expectOnce(subject: Subject, ids: string[], claims: Map<string, number>): Promise<void> {
  expect(ids.filter((id) => claims.get(id) !== 1)).toEqual([]);
  const wrong: Array<{ id: string; copies: unknown }> = [];
  for (const id of ids) {
    const copies = await subject.copies(id);
    if (copies.length !== 1 || copies[0]!.state !== 'failed' || copies[0]!.tag !== replayTag(key(id)))
      wrong.push({ id, copies });
  }
  expect(wrong).toEqual([]);
  expect(subject.leftovers()).toEqual([]);
}

/** per job, the outcomes of the attempts that had it: one `requeued`, the others `already` */
function expectOneRequeue(ids: string[], ...attempts: Array<Map<string, RequeueOutcome>>): void {
  const wrong = ids
    .map((id) => ({ id, outcomes: attempts.flatMap((a) => (a.has(id) ? [a.get(id)!] : [])) }))
    .filter(
      ({ outcomes }) =>
        outcomes.filter((o) => o === 'requeued').length !== 1 ||
        outcomes.some((o) => o !== 'requeued' && o !== 'already'),
    );
  expect(wrong).toEqual([]);
}

const byId = (jobs: RequeueRequest[], outcomes: RequeueOutcome[]) =>
  new Map(jobs.map((j, i) => [j.id, outcomes[i]!] as const));

for (const subject of [spoolSubject(), postgresSubject()]) {
  describe(`job source: ${subject.name}, two attempts of one batch`, () => {
    beforeEach(() => subject.reset());

    it('a retry started while the first attempt still runs, the processor working the queue meanwhile: each job queued once, none lost', async () => {
      const ids = idsOf(600, 'c');
      await subject.seed(ids.map((id) => ({ id, state: 'failed' as const })));
      const jobs = jobsOf(ids);
      const claims = new Map<string, number>();
      let running = true;
      const processor = (async () => {
        while (running) {
          await workQueue(subject, claims);
          await new Promise((r) => setTimeout(r, 1));
        }
      })();
      // the retry resumes after the first group the first attempt heartbeated
      const retryJobs = jobs.slice(250);
      const [first, retry] = await Promise.all([
        subject.source().requeueMany(jobs),
        subject.source().requeueMany(retryJobs),
      ]);
      running = false;
      await processor;
      await workQueue(subject, claims);
      expectOneRequeue(ids, byId(jobs, first), byId(retryJobs, retry));
      await expectOnce(subject, ids, claims);
    });
  });
}

describe('job source: spool, an attempt stalled or dead after its renames while another runs the batch', () => {
  const subject = spoolSubject();
  beforeEach(() => subject.reset());
  const N = 120;

  /** a hook that holds the attempt after its renames until released, once all `n` jobs are renamed */
  function holdAfterRenames(n: number) {
    let arrived = 0;
    let reached!: () => void;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const hook: SpoolHook = async (ids) => {
      arrived += ids.length;
      if (arrived >= n) reached();
      await held;
    };
    return { hook, reached: new Promise<void>((r) => (reached = r)), release: () => release() };
  }

  it('the first attempt stalls after its renames (not yet durable, not reported), a retry runs the batch, the processor works the queue, then the first goes on: each job queued once', async () => {
    const ids = idsOf(N, 's');
    await subject.seed(ids.map((id) => ({ id, state: 'failed' as const, payload: { n: id } })));
    const jobs = jobsOf(ids);
    const claims = new Map<string, number>();
    const hold = holdAfterRenames(N);
    const stalled = subject.source({ hook: hold.hook }).requeueMany(jobs);
    await hold.reached;
    const retry = await subject.source().requeueMany(jobs);
    await workQueue(subject, claims);
    hold.release();
    const first = await stalled;
    await workQueue(subject, claims);

    expect(first).toEqual(jobs.map(() => 'requeued'));
    expect(retry).toEqual(jobs.map(() => 'already'));
    await expectOnce(subject, ids, claims);
  });

  it('the first attempt dies after its renames, the processor works what it queued, the retry runs the batch: each job queued once', async () => {
    const ids = idsOf(N, 'd');
    await subject.seed(ids.map((id) => ({ id, state: 'failed' as const })));
    const jobs = jobsOf(ids);
    const claims = new Map<string, number>();
    const dying = subject.source({
      hook: () => {
        throw new Error('the attempt died after its renames');
      },
    });
    await expect(dying.requeueMany(jobs)).rejects.toThrow('died');
    await workQueue(subject, claims);
    const retry = await subject.source().requeueMany(jobs);
    await workQueue(subject, claims);

    expect(retry).toEqual(jobs.map(() => 'already'));
    await expectOnce(subject, ids, claims);
  });
});

describe('job source: postgres, an attempt whose UPDATE is not committed yet', () => {
  const subject = postgresSubject();
  beforeEach(() => subject.reset());

  /** the first attempt's requeueMany in a transaction it has not committed yet (the rows stay locked) */
  async function uncommitted(jobs: RequeueRequest[]) {
    const client = await subject.pool.connect();
    await client.query('BEGIN');
    const outcomes = await new PostgresJobSource(client as unknown as pg.Pool, subject.table).requeueMany(jobs);
    return {
      outcomes,
      end: async (how: 'COMMIT' | 'ROLLBACK') => {
        await client.query(how);
        client.release();
      },
    };
  }

  /** until a statement on the table waits for a row lock */
  async function lockWaiter(): Promise<void> {
    for (;;) {
      const { rows } = await subject.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`,
        [`%${subject.table}%`],
      );
      if (rows[0]!.n > 0) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  for (const end of ['COMMIT', 'ROLLBACK'] as const)
    it(`the retry waits for the first attempt's rows; first attempt ${end === 'COMMIT' ? 'commits: the retry finds the key' : 'dies before its commit: the retry requeues'}; each job queued once`, async () => {
      const ids = idsOf(300, end === 'COMMIT' ? 'p' : 'r');
      await subject.seed(ids.map((id) => ({ id, state: 'failed' as const })));
      const jobs = jobsOf(ids);
      const claims = new Map<string, number>();
      const first = await uncommitted(jobs);
      expect(first.outcomes.every((o) => o === 'requeued')).toBe(true);
      const retry = subject.source().requeueMany(jobs);
      await lockWaiter();
      await first.end(end);
      const outcomes = await retry;
      await workQueue(subject, claims);
      // a third attempt, late: the processor has failed every job again meanwhile
      const late = await subject.source().requeueMany(jobs);
      await workQueue(subject, claims);

      expect(outcomes).toEqual(jobs.map(() => (end === 'COMMIT' ? 'already' : 'requeued')));
      expect(late).toEqual(jobs.map(() => 'already'));
      await expectOnce(subject, ids, claims);
    });
});
