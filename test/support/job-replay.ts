import type pg from 'pg';

/** The jobs table of docs/backend-migration.md (the demo processor creates the same when it is absent). */
export async function createJobsTable(pool: pg.Pool, table: string): Promise<void> {
  await pool.query(
    `CREATE TABLE IF NOT EXISTS ${table} (id text PRIMARY KEY, payload jsonb, status text NOT NULL, attempts int DEFAULT 0,
     started_at timestamptz, updated_at timestamptz DEFAULT now(), replay_key text, error text)`,
  );
}
