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

/** Sizes and sha256 of both sides of a gzip stream. */
export interface StreamDigests {
  rawBytes: number;
  rawSha256: string;
  gzBytes: number;
  gzSha256: string;
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
  /** streamed, hashing both sides; progress: raw bytes so far */
  gzip: { args: { src: string; dest: string; level: number }; result: StreamDigests };
  gunzip: { args: { src: string; dest: string }; result: StreamDigests };
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

type ThreadMessage<R> =
  { progress: number } | { ok: boolean; result?: R; error?: { message: string; code: string | null } };

/**
 * Runs one operation on a fresh worker thread; rejects with SqliteThreadError carrying SQLite's (or the file
 * system's) code. `onProgress` gets the progress an operation reports (gzip, gunzip: raw bytes so far).
 */
export function inThread<K extends keyof ThreadOps>(
  op: K,
  args: ThreadOps[K]['args'],
  onProgress: (progress: number) => void = () => {},
): Promise<ThreadOps[K]['result']> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(script, { workerData: { op, args } });
    let settled = false;
    worker.on('message', (m: ThreadMessage<ThreadOps[K]['result']>) => {
      if ('progress' in m) return onProgress(m.progress);
      settled = true;
      if (m.ok) resolve(m.result!);
      else reject(new SqliteThreadError(m.error!.message, m.error!.code));
    });
    worker.once('error', (err) => {
      settled = true;
      reject(err);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`sqlite thread (${op}) exited with code ${code}`));
    });
  });
}
