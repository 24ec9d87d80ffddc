import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, inject } from 'vitest';
import { PostgresJobSource, SpoolJobSource } from '../../src/activities/migration/jobs/index.js';
import type { SpoolHook } from '../../src/activities/migration/jobs/spool-batch.js';
import { parseSpoolName, replayTag, spoolName } from '../../src/activities/migration/jobs/spool-names.js';
import type { JobSource, JobState } from '../../src/activities/migration/types.js';
import { createJobsTable } from './job-replay.js';

/** The JobSources of the conformance suite: the spool (real files) and a jobs table (the suite's Postgres). */

export interface Seed {
  id: string;
  state: JobState;
  payload?: Record<string, unknown>;
  /** ms since epoch the job entered its state */
  since?: number;
}

export interface Subject {
  name: 'spool' | 'postgres';
  /** a source on the subject's jobs (another instance per call: one per attempt); the hook: the spool's only */
  source(options?: { hook?: SpoolHook }): JobSource;
  reset(): Promise<void>;
  seed(jobs: Seed[]): Promise<void>;
  /** a stored job that is not a JSON object */
  corrupt(id: string, state: JobState): Promise<void>;
  remove(id: string): Promise<void>;
  /** every stored copy of the job: its state and the tag of the key it carries (spool-names.ts) */
  copies(id: string): Promise<Array<{ state: JobState; tag?: string }>>;
  /** moves the job keeping its payload (and key) */
  move(id: string, to: JobState): Promise<void>;
  /** the processor's claim of a queued job (queue → processing, atomically); false when it is not queued */
  claim(id: string): Promise<boolean>;
  /** the processor's failure of a claimed job: processing → failed, the key kept */
  fail(id: string): Promise<void>;
  /**
   * what a requeue left beside the jobs: in the spool, anything in `jobs/` but the state directories and the job
   * files in them (a staging directory, a temporary file); none for a table
   */
  leftovers(): string[];
}

const STATES: JobState[] = ['queue', 'processing', 'failed', 'completed'];

export function spoolSubject(): Subject & { root(): string } {
  let root = '';
  // reset() replaces the spool of the previous test; the last one goes with the file's (or describe's) tests
  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });
  const dir = (state: JobState) => join(root, 'jobs', state);
  /** the job's file names in a state: `<id>.json`, `<id>~<tag>.json` */
  const namesIn = (state: JobState, id: string) =>
    existsSync(dir(state)) ? readdirSync(dir(state)).filter((n) => parseSpoolName(n)?.id === id) : [];
  const file = (state: JobState, id: string) => join(dir(state), namesIn(state, id)[0] ?? spoolName(id));
  const copies = async (id: string) =>
    STATES.flatMap((state) =>
      namesIn(state, id).map((name) => {
        const tag = parseSpoolName(name)!.tag;
        return { state, ...(tag ? { tag } : {}) };
      }),
    );
  return {
    name: 'spool',
    root: () => root,
    source: (options) => new SpoolJobSource(root, options),
    reset: async () => {
      if (root) rmSync(root, { recursive: true, force: true });
      root = mkdtempSync(join(tmpdir(), 'job-spool-'));
      for (const s of STATES) mkdirSync(join(root, 'jobs', s), { recursive: true });
    },
    seed: async (jobs) => {
      for (const j of jobs) {
        const path = join(dir(j.state), spoolName(j.id));
        writeFileSync(path, JSON.stringify({ id: j.id, timestamp: '20260101_000000', ...j.payload }));
        if (j.since) utimesSync(path, j.since / 1000, j.since / 1000);
      }
    },
    corrupt: async (id, state) => writeFileSync(join(dir(state), spoolName(id)), '{"id": "half a job'),
    remove: async (id) => {
      for (const s of STATES) for (const name of namesIn(s, id)) rmSync(join(dir(s), name), { force: true });
    },
    copies,
    // keeping its name (and so its tag), as the processor moves a job
    move: async (id, to) => {
      const [from] = STATES.filter((s) => namesIn(s, id).length > 0);
      const name = namesIn(from!, id)[0]!;
      renameSync(join(dir(from!), name), join(dir(to), name));
    },
    claim: async (id) => {
      for (const name of namesIn('queue', id)) {
        try {
          renameSync(join(dir('queue'), name), join(dir('processing'), name));
          return true;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
      return false;
    },
    // as the demo processor: the job's JSON plus lastError written to failed/ under its name (by a rename), then
    // the claimed file removed
    fail: async (id) => {
      const source = file('processing', id);
      const name = namesIn('processing', id)[0]!;
      const job = JSON.parse(readFileSync(source, 'utf8')) as object;
      const tmp = join(dir('failed'), `.${name}.tmp`);
      writeFileSync(tmp, `${JSON.stringify({ ...job, lastError: 'backend failed' })}\n`);
      renameSync(tmp, join(dir('failed'), name));
      rmSync(source);
    },
    leftovers: () =>
      readdirSync(join(root, 'jobs'))
        .flatMap((entry) =>
          STATES.includes(entry as JobState)
            ? readdirSync(dir(entry as JobState))
                .filter((name) => !parseSpoolName(name))
                .map((name) => `${entry}/${name}`)
            : [entry],
        )
        .sort(),
  };
}

export function postgresSubject(): Subject & { pool: pg.Pool; table: string } {
  const pool = new pg.Pool({ connectionString: inject('databaseUrl'), max: 4 });
  const table = `jobs_conformance_${process.pid}`;
  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.end();
  });
  return {
    name: 'postgres',
    pool,
    table,
    source: () => new PostgresJobSource(pool, table),
    reset: async () => {
      await pool.query(`DROP TABLE IF EXISTS ${table}`);
      await createJobsTable(pool, table);
    },
    seed: async (jobs) => {
      for (const j of jobs)
        await pool.query(
          `INSERT INTO ${table} (id, payload, status, attempts, updated_at) VALUES ($1, $2, $3, 1, to_timestamp($4 / 1000.0))`,
          [j.id, { id: j.id, ...j.payload }, j.state, j.since ?? Date.now()],
        );
    },
    corrupt: async (id, state) => {
      await pool.query(`INSERT INTO ${table} (id, payload, status) VALUES ($1, '"half a job"'::jsonb, $2)`, [
        id,
        state,
      ]);
    },
    remove: async (id) => {
      await pool.query(`DELETE FROM ${table} WHERE id = $1`, [id]);
    },
    copies: async (id) => {
      const { rows } = await pool.query<{ status: JobState; replay_key: string | null }>(
        `SELECT status, replay_key FROM ${table} WHERE id = $1`,
        [id],
      );
      return rows.map((r) => ({ state: r.status, ...(r.replay_key ? { tag: replayTag(r.replay_key) } : {}) }));
    },
    move: async (id, to) => {
      await pool.query(`UPDATE ${table} SET status = $2, updated_at = now() WHERE id = $1`, [id, to]);
    },
    // as the demo processor (its claims take the row; its failure keeps replay_key)
    claim: async (id) =>
      (
        await pool.query(
          `UPDATE ${table} SET status = 'processing', started_at = now() WHERE id = $1 AND status = 'queue'`,
          [id],
        )
      ).rowCount === 1,
    fail: async (id) => {
      await pool.query(
        `UPDATE ${table} SET status = 'failed', error = 'backend failed', updated_at = now() WHERE id = $1 AND status = 'processing'`,
        [id],
      );
    },
    leftovers: () => [],
  };
}

/**
 * The processor, once over the queue: claims every queued job (counting the claims of each job: a job queued twice is
 * claimed twice) and fails it, its key kept. The number of jobs it worked.
 */
export async function workQueue(subject: Subject, claims: Map<string, number>): Promise<number> {
  let worked = 0;
  for (const { id } of await subject.source().list(['queue'], { limit: 100_000 })) {
    if (!(await subject.claim(id))) continue;
    claims.set(id, (claims.get(id) ?? 0) + 1);
    await subject.fail(id);
    worked += 1;
  }
  return worked;
}
