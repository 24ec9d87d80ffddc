import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import type { SpoolJobSource } from '../src/activities/migration/jobs/index.js';
import { requeueSpoolBatch } from '../src/activities/migration/jobs/spool-batch.js';
import { replayTag, spoolName } from '../src/activities/migration/jobs/spool-names.js';
import type { JobSource, JobState } from '../src/activities/migration/types.js';
import { ErrorType } from '../src/shared/constants.js';
import { postgresSubject, spoolSubject } from './support/job-sources.js';

/** One conformance suite for every JobSource: the spool (real files) and a jobs table (the suite's Postgres). */

for (const subject of [spoolSubject(), postgresSubject()]) {
  describe(`job source: ${subject.name}`, () => {
    let s: JobSource;
    beforeEach(async () => {
      await subject.reset();
      s = subject.source();
    });

    it('describes itself', () => {
      expect(s.describe()).toMatch(subject.name);
    });

    it('lists jobs of the asked states in id order, page by page, with the time they entered their state', async () => {
      const t = Date.parse('2026-01-02T03:04:05Z');
      await subject.seed([
        { id: 'j-03', state: 'failed', since: t },
        { id: 'j-01', state: 'failed', since: t + 1000 },
        { id: 'j-02', state: 'processing', since: t + 2000 },
        { id: 'j-04', state: 'completed', since: t },
        { id: 'j-05', state: 'queue', since: t },
      ]);
      const first = await s.list(['failed', 'processing'], { limit: 2 });
      expect(first.map((r) => [r.id, r.state])).toEqual([
        ['j-01', 'failed'],
        ['j-02', 'processing'],
      ]);
      expect(first[0]!.since).toBe(t + 1000);
      const second = await s.list(['failed', 'processing'], { afterId: 'j-02', limit: 2 });
      expect(second.map((r) => r.id)).toEqual(['j-03']);
      expect(await s.list(['failed', 'processing'], { afterId: 'j-03', limit: 2 })).toEqual([]);
      expect((await s.list(['completed', 'queue'], { limit: 10 })).map((r) => r.id)).toEqual(['j-04', 'j-05']);
    });

    it('gets a job with its payload and state; a missing job is undefined', async () => {
      await subject.seed([{ id: 'a1', state: 'failed', payload: { n: 7 } }]);
      const job = await s.get('a1');
      expect(job).toMatchObject({ id: 'a1', state: 'failed', payload: { id: 'a1', n: 7 } });
      expect(job!.replayTag).toBeUndefined();
      expect(await s.get('nope')).toBeUndefined();
    });

    it('a job that is not a JSON object is a non-retryable InvalidInput naming it', async () => {
      await subject.corrupt('bad1', 'failed');
      const err = await s.get('bad1').then(
        () => undefined,
        (e: unknown) => e as { type?: string; nonRetryable?: boolean; message: string },
      );
      expect(err?.type).toBe(ErrorType.InvalidInput);
      expect(err?.nonRetryable).toBe(true);
      expect(err?.message).toContain('bad1');
      if (subject.name === 'spool') expect(err?.message).toContain(join('failed', 'bad1.json'));
    });

    it('requeues a job once per key: the key travels with it through every state', async () => {
      await subject.seed([{ id: 'r1', state: 'failed', payload: { n: 1 } }]);
      expect(await s.requeue('r1', 'failed', 'wf/run/r1')).toBe('requeued');
      expect(await subject.copies('r1')).toEqual([{ state: 'queue', tag: replayTag('wf/run/r1') }]);
      expect(await s.get('r1')).toMatchObject({ state: 'queue', replayTag: replayTag('wf/run/r1'), payload: { n: 1 } });
      expect(await s.requeue('r1', 'failed', 'wf/run/r1')).toBe('already');
      for (const state of ['processing', 'failed', 'completed'] as const) {
        await subject.move('r1', state);
        expect(await s.requeue('r1', 'failed', 'wf/run/r1')).toBe('already');
        expect(await subject.copies('r1')).toEqual([{ state, tag: replayTag('wf/run/r1') }]);
      }
      // another run (another key) may requeue it again
      await subject.move('r1', 'failed');
      expect(await s.requeue('r1', 'failed', 'wf2/run/r1')).toBe('requeued');
      expect(await subject.copies('r1')).toEqual([{ state: 'queue', tag: replayTag('wf2/run/r1') }]);
    });

    it('requeues stuck and completed jobs from their state', async () => {
      await subject.seed([
        { id: 's1', state: 'processing' },
        { id: 'c1', state: 'completed' },
      ]);
      expect(await s.requeue('s1', 'processing', 'k/s1')).toBe('requeued');
      expect(await s.requeue('c1', 'completed', 'k/c1')).toBe('requeued');
      expect(await subject.copies('s1')).toEqual([{ state: 'queue', tag: replayTag('k/s1') }]);
      expect(await subject.copies('c1')).toEqual([{ state: 'queue', tag: replayTag('k/c1') }]);
    });

    it('a job that is gone is vanished; one in another state than planned is moved, and neither is touched', async () => {
      await subject.seed([
        { id: 'v1', state: 'failed' },
        { id: 'm1', state: 'failed' },
      ]);
      await subject.remove('v1');
      await subject.move('m1', 'completed');
      expect(await s.requeue('v1', 'failed', 'k/v1')).toBe('vanished');
      expect(await s.requeue('m1', 'failed', 'k/m1')).toBe('moved');
      expect(await subject.copies('v1')).toEqual([]);
      expect(await subject.copies('m1')).toEqual([{ state: 'completed' }]);
    });

    it('many requeues in parallel: each job once', async () => {
      const ids = Array.from({ length: 200 }, (_, i) => `p${String(i).padStart(4, '0')}`);
      await subject.seed(ids.map((id) => ({ id, state: 'failed' as const })));
      const outcomes = await Promise.all(ids.map((id) => s.requeue(id, 'failed', `k/${id}`)));
      expect(outcomes.every((o) => o === 'requeued')).toBe(true);
      expect(await s.list(['failed'], { limit: 1000 })).toEqual([]);
      expect((await s.list(['queue'], { limit: 1000 })).length).toBe(200);
      expect(subject.leftovers()).toEqual([]);
    });

    it('requeues many at once with the outcomes one by one would give, in order, reported group by group', async () => {
      await subject.seed([
        { id: 'b1', state: 'failed', payload: { n: 1 } },
        { id: 'b2', state: 'processing' },
        { id: 'b3', state: 'failed' },
        { id: 'b4', state: 'failed' },
        { id: 'b5', state: 'failed' },
        { id: 'b6', state: 'queue' },
      ]);
      expect(await s.requeue('b3', 'failed', 'k/b3')).toBe('requeued'); // requeued before by this run
      await subject.move('b3', 'processing');
      await subject.remove('b4');
      await subject.move('b5', 'completed');
      const jobs = ['b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b0'].map((id) => ({
        id,
        from: (id === 'b2' ? 'processing' : id === 'b6' ? 'queue' : 'failed') as JobState,
        key: `k/${id}`,
      }));
      const reported: string[] = [];
      const outcomes = await s.requeueMany(jobs, (group) => reported.push(...group));
      expect(outcomes).toEqual(['requeued', 'requeued', 'already', 'vanished', 'moved', 'requeued', 'vanished']);
      expect(reported).toEqual(outcomes);
      expect(await subject.copies('b1')).toEqual([{ state: 'queue', tag: replayTag('k/b1') }]);
      expect(await subject.copies('b2')).toEqual([{ state: 'queue', tag: replayTag('k/b2') }]);
      expect(await subject.copies('b3')).toEqual([{ state: 'processing', tag: replayTag('k/b3') }]);
      expect(await subject.copies('b5')).toEqual([{ state: 'completed' }]);
      expect(await subject.copies('b6')).toEqual([{ state: 'queue', tag: replayTag('k/b6') }]);
      expect(await s.get('b1')).toMatchObject({ payload: { n: 1 } });
      // again: every job is already, nothing moves
      expect(await s.requeueMany(jobs.slice(0, 3))).toEqual(['already', 'already', 'already']);
      expect(await subject.copies('b1')).toEqual([{ state: 'queue', tag: replayTag('k/b1') }]);
    });

    it('requeueMany of many jobs: each once, none left behind', async () => {
      const ids = Array.from({ length: 700 }, (_, i) => `m${String(i).padStart(4, '0')}`);
      await subject.seed(ids.map((id) => ({ id, state: 'failed' as const })));
      const groups: number[] = [];
      const outcomes = await s.requeueMany(
        ids.map((id) => ({ id, from: 'failed' as const, key: `k/${id}` })),
        (g) => groups.push(g.length),
      );
      expect(outcomes.every((o) => o === 'requeued')).toBe(true);
      expect(groups.reduce((a, b) => a + b, 0)).toBe(700);
      expect(await s.list(['failed'], { limit: 1000 })).toEqual([]);
      expect((await s.list(['queue'], { limit: 1000 })).length).toBe(700);
      expect(await subject.copies('m0699')).toEqual([{ state: 'queue', tag: replayTag('k/m0699') }]);
      expect(subject.leftovers()).toEqual([]);
    });

    if (subject.name === 'postgres') {
      // a table's requeue refuses a payload that is not an object; the spool moves a job's bytes as they are (detection
      // read every planned job first, and the processor fails one that is not JSON)
      it('requeue and requeueMany: a job that is not a JSON object is the InvalidInput naming it, and stays', async () => {
        await subject.corrupt('bad1', 'failed');
        await expect(s.requeue('bad1', 'failed', 'run/1/bad1')).rejects.toMatchObject({ type: ErrorType.InvalidInput });
        expect(await s.list(['queue'], { limit: 10 })).toEqual([]);
      });

      it('requeueMany: a job that is not a JSON object is the InvalidInput naming it', async () => {
        await subject.seed([{ id: 'g1', state: 'failed' }]);
        await subject.corrupt('g2', 'failed');
        await expect(
          s.requeueMany([
            { id: 'g1', from: 'failed', key: 'k/g1' },
            { id: 'g2', from: 'failed', key: 'k/g2' },
          ]),
        ).rejects.toMatchObject({ type: ErrorType.InvalidInput, message: expect.stringContaining('g2') });
      });
    }

    if (subject.name === 'spool') {
      const spool = () => s as SpoolJobSource;
      const dir = (state: JobState) => join(spool().root, 'jobs', state);

      it("a requeue is one rename to `<id>~<tag>.json`: the job's bytes unchanged, nothing staged, planned by name or not", async () => {
        await subject.seed([
          { id: 'n1', state: 'failed', payload: { n: 1 } },
          { id: 'n2', state: 'failed', payload: { n: 2 } },
        ]);
        const before = (id: string) => readFileSync(join(dir('failed'), `${id}.json`));
        const bytes = { n1: before('n1'), n2: before('n2') };
        expect(
          await s.requeueMany([
            { id: 'n1', from: 'failed', key: 'k/n1', name: 'n1.json' },
            { id: 'n2', from: 'failed', key: 'k/n2' },
          ]),
        ).toEqual(['requeued', 'requeued']);
        expect(readdirSync(dir('queue')).sort()).toEqual([
          spoolName('n1', replayTag('k/n1')),
          spoolName('n2', replayTag('k/n2')),
        ]);
        for (const id of ['n1', 'n2'] as const)
          expect(readFileSync(join(dir('queue'), spoolName(id, replayTag(`k/${id}`))))).toEqual(bytes[id]);
        expect(readdirSync(dir('failed'))).toEqual([]);
        expect(existsSync(join(spool().root, 'jobs', '.replay'))).toBe(false);
      });

      it("a job another run requeued before (its tag in the name) is requeued from that file with this run's tag", async () => {
        await subject.seed([{ id: 'o1', state: 'failed' }]);
        expect(await s.requeue('o1', 'failed', 'old/o1')).toBe('requeued');
        await subject.move('o1', 'failed');
        const [name] = readdirSync(dir('failed'));
        expect(await s.list(['failed'], { limit: 10 })).toMatchObject([
          { id: 'o1', name, replayTag: replayTag('old/o1') },
        ]);
        expect(await s.requeueMany([{ id: 'o1', from: 'failed', key: 'new/o1', name }])).toEqual(['requeued']);
        expect(await subject.copies('o1')).toEqual([{ state: 'queue', tag: replayTag('new/o1') }]);
        expect(await s.get('o1')).toMatchObject({ id: 'o1', state: 'queue', replayTag: replayTag('new/o1') });
      });

      it('an attempt that dies after its renames, before its group is reported: the retry finds every job tagged (already), each once', async () => {
        const ids = ['d1', 'd2', 'd3'];
        await subject.seed(ids.map((id) => ({ id, state: 'failed' as const })));
        const jobs = ids.map((id) => ({ id, from: 'failed' as const, key: `k/${id}`, name: `${id}.json` }));
        const dying = subject.source({
          hook: () => {
            throw new Error('killed');
          },
        });
        await expect(dying.requeueMany(jobs)).rejects.toThrow('killed');
        await subject.move('d2', 'processing'); // the processor took one meanwhile
        expect(await s.requeueMany(jobs)).toEqual(['already', 'already', 'already']);
        for (const id of ids) expect((await subject.copies(id)).map((c) => c.tag)).toEqual([replayTag(`k/${id}`)]);
      });

      it('a job planned under a name it no longer has is requeued from the file it has in that state', async () => {
        await subject.seed([{ id: 'r9', state: 'failed' }]);
        expect(
          await s.requeueMany([{ id: 'r9', from: 'failed', key: 'k/r9', name: 'r9~0123456789abcdef.json' }]),
        ).toEqual(['requeued']);
        expect(await subject.copies('r9')).toEqual([{ state: 'queue', tag: replayTag('k/r9') }]);
      });

      it('a group of plain jobs takes one fsync per directory: requeueSpoolBatch reports group by group', async () => {
        const ids = Array.from({ length: 5 }, (_, i) => `q${i}`);
        await subject.seed(ids.map((id) => ({ id, state: 'failed' as const })));
        const groups: number[] = [];
        await requeueSpoolBatch(
          spool(),
          ids.map((id) => ({ id, from: 'failed' as const, key: `k/${id}`, name: `${id}.json` })),
          (g) => groups.push(g.length),
          2,
        );
        expect(groups).toEqual([2, 2, 1]);
        expect(readdirSync(dir('queue')).length).toBe(5);
      });
    }
  });
}
