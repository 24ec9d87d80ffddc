import { linkSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import type { SpoolJobSource } from '../src/activities/migration/jobs/index.js';
import { requeueSpoolBatch } from '../src/activities/migration/jobs/spool-batch.js';
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
      expect(job!.replayKey).toBeUndefined();
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
      await expect(s.requeue('bad1', 'failed', 'run/1/bad1')).rejects.toMatchObject({ type: ErrorType.InvalidInput });
      expect(await s.list(['queue'], { limit: 10 })).toEqual([]);
    });

    it('requeues a job once per key: the key travels with it through every state', async () => {
      await subject.seed([{ id: 'r1', state: 'failed', payload: { n: 1 } }]);
      expect(await s.requeue('r1', 'failed', 'wf/run/r1')).toBe('requeued');
      expect(await subject.copies('r1')).toEqual([{ state: 'queue', key: 'wf/run/r1' }]);
      expect(await s.get('r1')).toMatchObject({ state: 'queue', replayKey: 'wf/run/r1', payload: { n: 1 } });
      expect(await s.requeue('r1', 'failed', 'wf/run/r1')).toBe('already');
      for (const state of ['processing', 'failed', 'completed'] as const) {
        await subject.move('r1', state);
        expect(await s.requeue('r1', 'failed', 'wf/run/r1')).toBe('already');
        expect(await subject.copies('r1')).toEqual([{ state, key: 'wf/run/r1' }]);
      }
      // another run (another key) may requeue it again
      await subject.move('r1', 'failed');
      expect(await s.requeue('r1', 'failed', 'wf2/run/r1')).toBe('requeued');
      expect(await subject.copies('r1')).toEqual([{ state: 'queue', key: 'wf2/run/r1' }]);
    });

    it('requeues stuck and completed jobs from their state', async () => {
      await subject.seed([
        { id: 's1', state: 'processing' },
        { id: 'c1', state: 'completed' },
      ]);
      expect(await s.requeue('s1', 'processing', 'k/s1')).toBe('requeued');
      expect(await s.requeue('c1', 'completed', 'k/c1')).toBe('requeued');
      expect(await subject.copies('s1')).toEqual([{ state: 'queue', key: 'k/s1' }]);
      expect(await subject.copies('c1')).toEqual([{ state: 'queue', key: 'k/c1' }]);
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
      expect(subject.staged()).toEqual([]);
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
      expect(await subject.copies('b1')).toEqual([{ state: 'queue', key: 'k/b1' }]);
      expect(await subject.copies('b2')).toEqual([{ state: 'queue', key: 'k/b2' }]);
      expect(await subject.copies('b3')).toEqual([{ state: 'processing', key: 'k/b3' }]);
      expect(await subject.copies('b5')).toEqual([{ state: 'completed' }]);
      expect(await subject.copies('b6')).toEqual([{ state: 'queue', key: 'k/b6' }]);
      expect(await s.get('b1')).toMatchObject({ payload: { n: 1 } });
      // again: every job is already, nothing moves
      expect(await s.requeueMany(jobs.slice(0, 3))).toEqual(['already', 'already', 'already']);
      expect(await subject.copies('b1')).toEqual([{ state: 'queue', key: 'k/b1' }]);
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
      expect(await subject.copies('m0699')).toEqual([{ state: 'queue', key: 'k/m0699' }]);
      expect(subject.staged()).toEqual([]);
    });

    if (subject.name === 'spool') {
      it('older code crashed after the queued copy existed but before the source was removed: the retry is already and the job exists once', async () => {
        await subject.seed([{ id: 'x1', state: 'failed', payload: { n: 2 } }]);
        const root = (s as SpoolJobSource).root;
        const failed = join(root, 'jobs', 'failed', 'x1.json');
        const original = readFileSync(failed, 'utf8');
        expect(await s.requeue('x1', 'failed', 'k/x1')).toBe('requeued');
        writeFileSync(failed, original); // as if the removal never happened
        expect(await s.requeue('x1', 'failed', 'k/x1')).toBe('already');
        expect(await subject.copies('x1')).toEqual([{ state: 'queue', key: 'k/x1' }]);
        // ... also when the processor already moved the keyed copy on
        await subject.move('x1', 'processing');
        writeFileSync(failed, original);
        expect(await s.requeue('x1', 'failed', 'k/x1')).toBe('already');
        expect(await subject.copies('x1')).toEqual([{ state: 'processing', key: 'k/x1' }]);
      });

      it('older code crashed after staging but before the link: the retry requeues once, no staging file is left', async () => {
        await subject.seed([{ id: 'y1', state: 'failed' }]);
        const root = (s as SpoolJobSource).root;
        mkdirSync(join(root, 'jobs', '.replay'), { recursive: true });
        writeFileSync(join(root, 'jobs', '.replay', 'y1.json'), '{"id":"y1","replay":{"key":"k/y1"}}');
        expect(await s.requeue('y1', 'failed', 'k/y1')).toBe('requeued');
        expect(await subject.copies('y1')).toEqual([{ state: 'queue', key: 'k/y1' }]);
        expect(readdirSync(join(root, 'jobs', 'queue'))).toEqual(['y1.json']);
        expect(readdirSync(join(root, 'jobs', '.replay'))).toEqual([]);
      });

      it('requeueMany after older code crashed at each point of a group (its shared staging name): each job once with its key, no staging file', async () => {
        // a group crashed: c1 staged only, c2 staged and its source removed, c3 linked into queue/ too (staging name
        // left), c4 not reached; c5 as older code crashed (linked into queue/, source and staging name left)
        const ids = ['c1', 'c2', 'c3', 'c4', 'c5'];
        await subject.seed(ids.map((id) => ({ id, state: 'failed' as const, payload: { n: id } })));
        const root = (s as SpoolJobSource).root;
        const jobs = join(root, 'jobs');
        mkdirSync(join(jobs, '.replay'), { recursive: true });
        const keyed = (id: string) =>
          `${JSON.stringify({ id, timestamp: '20260101_000000', n: id, replay: { key: `k/${id}` } })}\n`;
        for (const id of ['c1', 'c2', 'c3', 'c5']) writeFileSync(join(jobs, '.replay', `${id}.json`), keyed(id));
        for (const id of ['c2', 'c3']) rmSync(join(jobs, 'failed', `${id}.json`));
        for (const id of ['c3', 'c5']) linkSync(join(jobs, '.replay', `${id}.json`), join(jobs, 'queue', `${id}.json`));

        const outcomes = await requeueSpoolBatch(
          s as SpoolJobSource,
          ids.map((id) => ({ id, from: 'failed' as const, key: `k/${id}` })),
          undefined,
          2,
        );
        expect(outcomes).toEqual(['requeued', 'requeued', 'already', 'requeued', 'already']);
        for (const id of ids) expect(await subject.copies(id)).toEqual([{ state: 'queue', key: `k/${id}` }]);
        for (const id of ids)
          expect(JSON.parse(readFileSync(join(jobs, 'queue', `${id}.json`), 'utf8'))).toEqual(JSON.parse(keyed(id)));
        expect(readdirSync(join(jobs, '.replay'))).toEqual([]);
        expect(readdirSync(join(jobs, 'failed'))).toEqual([]);
      });

      it("a job found only under older code's staging name with another key is vanished, and that copy is left alone", async () => {
        const root = (s as SpoolJobSource).root;
        mkdirSync(join(root, 'jobs', '.replay'), { recursive: true });
        writeFileSync(join(root, 'jobs', '.replay', 'e1.json'), '{"id":"e1","replay":{"key":"other/e1"}}');
        expect(await s.requeueMany([{ id: 'e1', from: 'failed', key: 'k/e1' }])).toEqual(['vanished']);
        expect(await subject.copies('e1')).toEqual([]);
        expect(readdirSync(join(root, 'jobs', '.replay'))).toEqual(['e1.json']);
      });

      it('requeueMany never writes through a staging name older code left linked to a queued job', async () => {
        // d1 was requeued by a crashed attempt (staging name still linked to its queued copy), the processor took it
        // and it failed again; a retry sees its key and the queued file's bytes never change
        await subject.seed([{ id: 'd1', state: 'failed' }]);
        const root = (s as SpoolJobSource).root;
        const jobs = join(root, 'jobs');
        expect(await s.requeueMany([{ id: 'd1', from: 'failed', key: 'k/d1' }])).toEqual(['requeued']);
        const queued = readFileSync(join(jobs, 'queue', 'd1.json'), 'utf8');
        linkSync(join(jobs, 'queue', 'd1.json'), join(jobs, '.replay', 'd1.json'));
        expect(await s.requeueMany([{ id: 'd1', from: 'failed', key: 'k/d1' }])).toEqual(['already']);
        expect(readFileSync(join(jobs, 'queue', 'd1.json'), 'utf8')).toBe(queued);
        expect(readdirSync(join(jobs, '.replay'))).toEqual([]);
        // another run's key: a new staged file, the inode the leftover name points at (still someone's) untouched
        linkSync(join(jobs, 'queue', 'd1.json'), join(jobs, '.replay', 'd1.json'));
        linkSync(join(jobs, 'queue', 'd1.json'), join(root, 'elsewhere.json'));
        await subject.move('d1', 'failed');
        expect(await s.requeueMany([{ id: 'd1', from: 'failed', key: 'k2/d1' }])).toEqual(['requeued']);
        expect(await subject.copies('d1')).toEqual([{ state: 'queue', key: 'k2/d1' }]);
        expect(readFileSync(join(root, 'elsewhere.json'), 'utf8')).toBe(queued);
        expect(readdirSync(join(jobs, '.replay'))).toEqual([]);
      });
    }
  });
}
