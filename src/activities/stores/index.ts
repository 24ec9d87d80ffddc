import { mkdirSync } from 'node:fs';
import pg from 'pg';
import { ApplicationFailure } from '@temporalio/common';
import type { ObjectStoreConfig } from '../../shared/schemas.js';
import { ObjectStore } from './object-store.js';
import { PostgresTableStore } from './postgres-table.js';
import { SqliteTableStore } from './sqlite-table.js';
import type { ObjectStoreAdapter } from './types.js';

/**
 * Opens stores named in environment files. Postgres pools are built once per connection string (read from the
 * worker's environment variable the file names) and shared; close() ends them at worker shutdown.
 */
export class StoreFactory {
  private readonly pools = new Map<string, pg.Pool>();

  async open(config: ObjectStoreConfig, resolvePath: (p: string) => string): Promise<ObjectStoreAdapter> {
    switch (config.type) {
      case 'postgres': {
        const url = process.env[config.urlEnv];
        if (!url) throw ApplicationFailure.nonRetryable(`the worker's environment variable ${config.urlEnv} (urlEnv) is not set`, 'EnvironmentInvalid');
        let pool = this.pools.get(url);
        if (!pool) {
          pool = new pg.Pool({ connectionString: url, max: 8 });
          pool.on('error', () => {});
          this.pools.set(url, pool);
        }
        const store = new PostgresTableStore({ pool, table: config.table, columns: config.columns });
        return store;
      }
      case 'sqlite': {
        const path = resolvePath(config.path);
        return new SqliteTableStore({ path, table: config.table, columns: config.columns as never });
      }
      case 'object-store': {
        const root = resolvePath(config.root);
        mkdirSync(root, { recursive: true });
        return ObjectStore.open(root);
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.end()));
    this.pools.clear();
  }
}
