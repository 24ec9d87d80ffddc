import { mkdirSync } from 'node:fs';
import pg from 'pg';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../shared/constants.js';
import type { ObjectStoreConfig } from '../../shared/schemas.js';
import { ObjectStore } from './object-store.js';
import { PostgresTableStore } from './postgres-table.js';
import { SqliteTableStore } from './sqlite-table.js';
import { StoreConfigError, type ObjectStoreAdapter } from './types.js';

/** a store configuration error is final (EnvironmentInvalid); anything else (a connection) may be retried */
function configFailure(error: unknown): never {
  if (error instanceof StoreConfigError)
    throw ApplicationFailure.nonRetryable(error.message, ErrorType.EnvironmentInvalid);
  throw error;
}

export interface OpenOptions {
  /** false: open a table whose fingerprint column is not installed yet (to install it) */
  check?: boolean;
  /**
   * Reading only (detection, dry runs): nothing is created, migrated or converted (no object-store root or index,
   * no SQLite file, table or journal mode); what is missing is refused as EnvironmentInvalid naming the fix.
   */
  readOnly?: boolean;
}

/**
 * Opens stores named in environment files. Postgres pools are built once per connection string (read from the
 * worker's environment variable the file names) and shared; close() ends them at worker shutdown.
 */
export class StoreFactory {
  private readonly pools = new Map<string, pg.Pool>();

  /** The shared pool of the connection string in the worker's variable `urlEnv`. */
  pool(urlEnv: string): pg.Pool {
    const url = process.env[urlEnv];
    if (!url)
      throw ApplicationFailure.nonRetryable(
        `the worker's environment variable ${urlEnv} (urlEnv) is not set`,
        ErrorType.EnvironmentInvalid,
      );
    let pool = this.pools.get(url);
    if (!pool) {
      pool = new pg.Pool({ connectionString: url, max: 8 });
      pool.on('error', () => {});
      this.pools.set(url, pool);
    }
    return pool;
  }

  async open(
    config: ObjectStoreConfig,
    resolvePath: (p: string) => string,
    options: OpenOptions = {},
  ): Promise<ObjectStoreAdapter> {
    switch (config.type) {
      case 'postgres': {
        const pool = this.pool(config.urlEnv);
        const contentReference = config.contentReference && { root: resolvePath(config.contentReference.root) };
        let store: PostgresTableStore;
        try {
          // never `create` from an environment file: the worker reads and writes rows, it does not make tables
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
            readOnly: options.readOnly,
          });
        } catch (error) {
          return configFailure(error);
        }
      }
      case 'object-store': {
        const root = resolvePath(config.root);
        try {
          if (!options.readOnly) mkdirSync(root, { recursive: true });
          return await ObjectStore.open(root, { readOnly: options.readOnly });
        } catch (error) {
          return configFailure(error);
        }
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.end()));
    this.pools.clear();
  }
}
