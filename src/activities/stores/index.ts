import { mkdirSync } from 'node:fs';
import pg from 'pg';
import { ApplicationFailure } from '@temporalio/common';
import type { ObjectStoreConfig } from '../../shared/schemas.js';
import { ObjectStore } from './object-store.js';
import { PostgresTableStore } from './postgres-table.js';
import { SqliteTableStore } from './sqlite-table.js';
import { StoreConfigError, type ObjectStoreAdapter } from './types.js';

/** a store configuration error is final (EnvironmentInvalid); anything else (a connection) may be retried */
function configFailure(error: unknown): never {
  if (error instanceof StoreConfigError) throw ApplicationFailure.nonRetryable(error.message, 'EnvironmentInvalid');
  throw error;
}

/**
 * Opens stores named in environment files. Postgres pools are built once per connection string (read from the
 * worker's environment variable the file names) and shared; close() ends them at worker shutdown.
 */
export class StoreFactory {
  private readonly pools = new Map<string, pg.Pool>();

  /** `check: false` opens a table whose fingerprint column is not installed yet (to install it) */
  async open(
    config: ObjectStoreConfig,
    resolvePath: (p: string) => string,
    options: { check?: boolean } = {},
  ): Promise<ObjectStoreAdapter> {
    switch (config.type) {
      case 'postgres': {
        const url = process.env[config.urlEnv];
        if (!url)
          throw ApplicationFailure.nonRetryable(
            `the worker's environment variable ${config.urlEnv} (urlEnv) is not set`,
            'EnvironmentInvalid',
          );
        let pool = this.pools.get(url);
        if (!pool) {
          pool = new pg.Pool({ connectionString: url, max: 8 });
          pool.on('error', () => {});
          this.pools.set(url, pool);
        }
        const contentReference = config.contentReference && { root: resolvePath(config.contentReference.root) };
        let store: PostgresTableStore;
        try {
          store = new PostgresTableStore({ pool, table: config.table, columns: config.columns, contentReference });
        } catch (error) {
          return configFailure(error);
        }
        // eagerly, so that a misconfigured table fails here, once, rather than on every retry of a later call
        if (options.check !== false) await store.init().catch(configFailure);
        return store;
      }
      case 'sqlite': {
        const path = resolvePath(config.path);
        try {
          return new SqliteTableStore({
            path,
            table: config.table,
            columns: config.columns as never,
            check: options.check,
          });
        } catch (error) {
          return configFailure(error);
        }
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
