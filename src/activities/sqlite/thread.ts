import { Worker } from 'node:worker_threads';

/** The operations of thread.mjs: one SQLite operation per worker thread, off the activity worker's event loop. */
export interface CheckResult {
  openError?: string;
  integrity: string[];
  foreignKeyViolations: number;
  tables: number;
  indexes: number;
  triggers: number;
  views: number;
  tableNames: string[];
  rows: Record<string, number | null>;
  sql: Array<{ query: string; value?: unknown; error?: string }>;
  schemaDigest: string;
  pageSize: number;
  pageCount: number;
  freelistCount: number;
}

export interface ThreadOps {
  backup: {
    args: { src: string; dest: string; method: 'backup-api' | 'vacuum-into' };
    result: { bytes: number; pageSize: number; pageCount: number };
  };
  check: {
    args: {
      path: string;
      integrity?: 'quick' | 'full' | 'none';
      foreignKeys?: boolean;
      rowsOf?: string[];
      sql?: Array<{ query: string }>;
      /** read without writing anything (no -wal/-shm created): see open() in thread.mjs */
      peek?: boolean;
    };
    result: CheckResult;
  };
  objects: {
    args: { path: string; rowsOf?: string[]; peek?: boolean };
    result: {
      objects: Array<{ type: string; name: string; tableName: string; virtual: boolean }>;
      /** declared foreign keys: `table` references `parent` */
      foreignKeys: Array<{ table: string; parent: string }>;
      rows: Record<string, number | null>;
    };
  };
  digests: {
    args: { path: string; tables?: string[]; peek?: boolean };
    result: { schemaDigest: string; tables: Record<string, { rows: number; sha256: string }> };
  };
  checkpoint: {
    args: { path: string; mode: 'PASSIVE' | 'FULL' | 'RESTART' | 'TRUNCATE' };
    result: { busy: number; log: number; checkpointed: number };
  };
  vacuum: { args: { path: string }; result: { pageCount: number } };
  transaction: { args: { path: string; statements: string[] }; result: { changes: number[] } };
  init: {
    args: { path: string; sql: string; journalMode?: 'WAL' | 'DELETE' };
    result: { tables: number; indexes: number; triggers: number; views: number; schemaDigest: string };
  };
}

export class SqliteThreadError extends Error {
  constructor(
    message: string,
    readonly code: string | null,
  ) {
    super(message);
    this.name = 'SqliteError';
  }
}

const script = new URL('./thread.mjs', import.meta.url);

/** Runs one operation on a fresh worker thread; rejects with SqliteThreadError carrying SQLite's code. */
export function inThread<K extends keyof ThreadOps>(
  op: K,
  args: ThreadOps[K]['args'],
): Promise<ThreadOps[K]['result']> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(script, { workerData: { op, args } });
    let settled = false;
    worker.once(
      'message',
      (m: { ok: boolean; result?: ThreadOps[K]['result']; error?: { message: string; code: string | null } }) => {
        settled = true;
        if (m.ok) resolve(m.result!);
        else reject(new SqliteThreadError(m.error!.message, m.error!.code));
      },
    );
    worker.once('error', (err) => {
      settled = true;
      reject(err);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`sqlite thread (${op}) exited with code ${code}`));
    });
  });
}
