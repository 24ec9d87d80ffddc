import type pg from 'pg';

const RETRIES = 3;

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', '57P01', '57P02', '57P03']);

/** The connection went away (server restart, idle socket killed): the statement can be retried on a fresh connection. */
export function isConnectionError(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  if (typeof e.code === 'string' && (CONNECTION_CODES.has(e.code) || e.code.startsWith('08'))) return true;
  return (
    typeof e.message === 'string' &&
    /connection terminated|connection error|not queryable|server closed the connection|terminating connection/i.test(
      e.message,
    )
  );
}

const backOff = (attempt: number) => new Promise((resolve) => setTimeout(resolve, 100 * attempt));

/** One statement through the pool (no client is kept), retried on a fresh connection when the connection died. */
export async function query<R extends pg.QueryResultRow>(
  pool: pg.Pool,
  text: string,
  params: unknown[],
): Promise<pg.QueryResult<R>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await pool.query<R>(text, params);
    } catch (error) {
      if (attempt >= RETRIES || !isConnectionError(error)) throw error;
      await backOff(attempt);
    }
  }
}

/** Runs `work` in one transaction on a pooled client, retried as a whole when the connection dies. */
export async function transaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    let client: pg.PoolClient | undefined;
    try {
      client = await pool.connect();
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      client.release();
      return result;
    } catch (error) {
      if (client) {
        const broken = isConnectionError(error);
        if (!broken) await client.query('ROLLBACK').catch(() => {});
        // a broken client is destroyed rather than returned to the pool
        client.release(broken ? (error as Error) : undefined);
      }
      if (attempt >= RETRIES || !isConnectionError(error)) throw error;
      await backOff(attempt);
    }
  }
}
