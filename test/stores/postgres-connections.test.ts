import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { summarizeRows } from '../../src/activities/stores/fingerprint.js';
import { isConnectionError, PostgresTableStore } from '../../src/activities/stores/postgres-table.js';
import { ensurePostgres } from '../../src/dev/postgres.js';
import { freePort } from '../../src/dev/ports.js';
import { metaOf, object, scanAll, useStores, wipe } from '../support/stores.js';

const {
  store,
  postgres: { poolName },
  tempDir,
} = useStores(['postgres-table']);

describe('postgres-table connections', () => {
  it('tells connection failures (retried) from statement errors (not retried)', () => {
    expect(
      isConnectionError(
        Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
      ),
    ).toBe(true);
    expect(
      isConnectionError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })),
    ).toBe(true);
    expect(isConnectionError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isConnectionError(Object.assign(new Error('relation "x" does not exist'), { code: '42P01' }))).toBe(false);
    expect(isConnectionError(Object.assign(new Error('duplicate key'), { code: '23505' }))).toBe(false);
    expect(isConnectionError(undefined)).toBe(false);
  });

  it('survives its connections being terminated between calls', async () => {
    const s = store('postgres-table');
    await wipe(s);
    await s.put([object('before', 1)]);
    const admin = new pg.Client({ connectionString: inject('databaseUrl') });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ ok: boolean }>(
        'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1',
        [poolName],
      );
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.every((r) => r.ok)).toBe(true);
    } finally {
      await admin.end();
    }
    await s.put([object('after', 1)]);
    expect((await scanAll(s)).flat().map((m) => m.objectId)).toEqual(['after', 'before']);
  });

  it('survives a Postgres restart between calls (its own embedded server, even with DATABASE_URL set)', async () => {
    const dataDir = tempDir();
    const port = await freePort();
    let server = await ensurePostgres({ dataDir, port, database: 'restart_test', forceEmbedded: true });
    const restartPool = new pg.Pool({ connectionString: server.url, max: 2 });
    try {
      const s = await PostgresTableStore.open({
        pool: restartPool,
        table: 'objects',
        create: true,
        name: 'restart test',
      });
      expect(s.describe()).toBe('postgres table restart test');
      await s.put([object('before', 1)]);
      expect(await s.summarize({})).toEqual(summarizeRows([metaOf(object('before', 1))]));
      await server.stop();
      server = await ensurePostgres({ dataDir, port, database: 'restart_test', forceEmbedded: true });
      await s.put([object('after', 1)]);
      expect((await scanAll(s)).flat()).toEqual([metaOf(object('after', 1)), metaOf(object('before', 1))]);
      await s.close();
    } finally {
      await restartPool.end();
      await server.stop();
    }
  });
});
