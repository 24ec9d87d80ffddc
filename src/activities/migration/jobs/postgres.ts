import type pg from 'pg';
import { query } from '../../stores/postgres/connection.js';
import { quoteIdentifier } from '../../stores/sql.js';
import type { JobRecord, JobSource, JobState, RequeueOutcome } from '../types.js';
import { invalidJob } from './errors.js';

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
  ...(r.replay_key !== null ? { replayKey: r.replay_key } : {}),
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
}
