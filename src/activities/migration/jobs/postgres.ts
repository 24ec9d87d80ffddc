import type pg from 'pg';
import { query } from '../../stores/postgres/connection.js';
import { quoteIdentifier } from '../../stores/sql.js';
import type { JobRecord, JobSource, JobState, RequeueOutcome, RequeueRequest } from '../types.js';
import { invalidJob } from './errors.js';
import { replayTag } from './spool-names.js';

interface Row {
  id: string;
  status: JobState;
  since: string | number;
  attempts: number | null;
  replay_key: string | null;
}

const COLUMNS = `id, status, (extract(epoch from coalesce(updated_at, started_at, now())) * 1000)::float8 AS since,
  attempts, replay_key`;

const record = (r: Row): JobRecord => ({
  id: r.id,
  state: r.status,
  since: Number(r.since),
  ...(r.attempts !== null ? { attempts: r.attempts } : {}),
  ...(r.replay_key !== null ? { replayTag: replayTag(r.replay_key) } : {}),
});

/**
 * A jobs table (docs/backend-migration.md): `(id text primary key, payload jsonb, status text, attempts int,
 * started_at, updated_at timestamptz, replay_key text, error text)`. A requeue is one UPDATE guarded by the state
 * it was planned from and the key, so it moves a job at most once per key whatever retries.
 */
export class PostgresJobSource implements JobSource {
  private readonly table: string;

  constructor(
    private readonly pool: pg.Pool,
    readonly tableName: string,
  ) {
    this.table = quoteIdentifier(tableName, 'jobs table');
  }

  describe(): string {
    return `postgres table ${this.tableName}`;
  }

  async list(states: JobState[], page: { afterId?: string; limit: number }): Promise<JobRecord[]> {
    const { rows } = await query<Row>(
      this.pool,
      `SELECT ${COLUMNS} FROM ${this.table} WHERE status = ANY($1::text[]) AND ($2::text IS NULL OR id > $2)
       ORDER BY id LIMIT $3`,
      [states, page.afterId ?? null, page.limit],
    );
    return rows.map(record);
  }

  async get(id: string): Promise<(JobRecord & { payload: Record<string, unknown> }) | undefined> {
    const { rows } = await query<Row & { payload: unknown }>(
      this.pool,
      `SELECT ${COLUMNS}, payload FROM ${this.table} WHERE id = $1`,
      [id],
    );
    const row = rows[0];
    if (!row) return undefined;
    const payload = row.payload;
    if (!payload || typeof payload !== 'object' || Array.isArray(payload))
      throw invalidJob(id, `${this.tableName}.payload`, 'not a JSON object');
    return { ...record(row), payload: payload as Record<string, unknown> };
  }

  async requeue(id: string, from: JobState, key: string): Promise<RequeueOutcome> {
    const moved = await query(
      this.pool,
      `UPDATE ${this.table} SET status = 'queue', replay_key = $3, started_at = NULL, updated_at = now(), error = NULL
       WHERE id = $1 AND status = $2 AND replay_key IS DISTINCT FROM $3 AND jsonb_typeof(payload) = 'object'`,
      [id, from, key],
    );
    if (moved.rowCount === 1) return 'requeued';
    const { rows } = await query<{ replay_key: string | null; status: string; kind: string | null }>(
      this.pool,
      `SELECT replay_key, status, jsonb_typeof(payload) AS kind FROM ${this.table} WHERE id = $1`,
      [id],
    );
    if (!rows[0]) return 'vanished';
    if (rows[0].status === from && rows[0].kind !== 'object' && rows[0].replay_key !== key)
      throw invalidJob(id, `${this.tableName}.payload`, 'not a JSON object');
    return rows[0].replay_key === key ? 'already' : 'moved';
  }

  /**
   * Groups of PG_GROUP jobs, each one UPDATE over `unnest` of (id, from, key) with the same guards as `requeue`;
   * the jobs it did not move are told apart by one SELECT (already, moved, vanished; a payload that is not an
   * object in its planned state is the error `requeue` gives).
   */
  async requeueMany(jobs: RequeueRequest[], onGroup?: (outcomes: RequeueOutcome[]) => void): Promise<RequeueOutcome[]> {
    const all: RequeueOutcome[] = [];
    for (let i = 0; i < jobs.length; i += PG_GROUP) {
      const group = jobs.slice(i, i + PG_GROUP);
      const outcomes = await this.requeueGroup(group);
      all.push(...outcomes);
      onGroup?.(outcomes);
    }
    return all;
  }

  private async requeueGroup(jobs: RequeueRequest[]): Promise<RequeueOutcome[]> {
    const { rows: moved } = await query<{ id: string }>(
      this.pool,
      `UPDATE ${this.table} AS j SET status = 'queue', replay_key = r.key, started_at = NULL, updated_at = now(),
         error = NULL
       FROM unnest($1::text[], $2::text[], $3::text[]) AS r(id, from_state, key)
       WHERE j.id = r.id AND j.status = r.from_state AND j.replay_key IS DISTINCT FROM r.key
         AND jsonb_typeof(j.payload) = 'object'
       RETURNING j.id`,
      [jobs.map((j) => j.id), jobs.map((j) => j.from), jobs.map((j) => j.key)],
    );
    const requeued = new Set(moved.map((r) => r.id));
    const rest = jobs.filter((j) => !requeued.has(j.id));
    const found = new Map<string, { replay_key: string | null; status: string; kind: string | null }>();
    if (rest.length > 0) {
      const { rows } = await query<{ id: string; replay_key: string | null; status: string; kind: string | null }>(
        this.pool,
        `SELECT id, replay_key, status, jsonb_typeof(payload) AS kind FROM ${this.table} WHERE id = ANY($1::text[])`,
        [rest.map((j) => j.id)],
      );
      for (const r of rows) found.set(r.id, r);
    }
    return jobs.map((j) => {
      if (requeued.has(j.id)) return 'requeued';
      const row = found.get(j.id);
      if (!row) return 'vanished';
      if (row.status === j.from && row.kind !== 'object' && row.replay_key !== j.key)
        throw invalidJob(j.id, `${this.tableName}.payload`, 'not a JSON object');
      return row.replay_key === j.key ? 'already' : 'moved';
    });
  }
}

/** jobs per UPDATE of `requeueMany` */
const PG_GROUP = 500;
