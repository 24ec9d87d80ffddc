// Runs one SQLite operation (or the gzip / gunzip of a backup) on a worker thread, so a long copy, integrity check
// or compression never blocks the activity worker's event loop (heartbeats, other activities): streaming a
// gigabyte through zlib on the main thread held it in garbage collection for up to ~90 ms at a time
// (BENCHMARKS.md, "SQLite backup"). Started by thread.ts; plain JS because it is loaded by path. Every identifier
// that reaches SQL here was validated by the environment schema (sqlIdentifier).
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, readFileSync, statSync } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createGunzip, createGzip } from 'node:zlib';
import Database from 'better-sqlite3';

const quote = (name) => `"${String(name).replaceAll('"', '""')}"`;

function open(path, { readonly = true, peek = false } = {}) {
  // peek: read without writing a byte anywhere. A read-only connection to a WAL database without its -wal
  // creates -wal and -shm beside it (and rewrites an -shm it finds); with no WAL content there is nothing but the
  // main file to read, so read a copy of it in memory (marked rollback-journal: a memory database has no WAL).
  if (peek && readonly && !(existsSync(`${path}-wal`) && statSync(`${path}-wal`).size > 0)) {
    const bytes = readFileSync(path);
    if (bytes.length >= 20 && bytes[18] === 2 && bytes[19] === 2) bytes.fill(1, 18, 20);
    return new Database(bytes, { readonly: true });
  }
  const db = new Database(path, { readonly, fileMustExist: true });
  db.pragma('busy_timeout = 10000');
  return db;
}

function counts(db) {
  const rows = db
    .prepare(`SELECT type, count(*) AS n FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' GROUP BY type`)
    .all();
  const by = Object.fromEntries(rows.map((r) => [r.type, r.n]));
  return { tables: by.table ?? 0, indexes: by.index ?? 0, triggers: by.trigger ?? 0, views: by.view ?? 0 };
}

function schemaDigest(db) {
  const hash = createHash('sha256');
  for (const r of db.prepare(`SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name`).raw().iterate())
    hash.update(JSON.stringify(r)).update('\n');
  return hash.digest('hex');
}

const tableNames = (db) =>
  db
    .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
    .pluck()
    .all();

/** progress messages (raw bytes so far) go to the parent at most every this many bytes */
const PROGRESS_EVERY = 8 << 20;

/** Counts and hashes what flows through; `onBytes` gets the running count. */
function tap(onBytes = () => {}) {
  const hash = createHash('sha256');
  let bytes = 0;
  const stream = new Transform({
    transform(chunk, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      onBytes(bytes);
      done(null, chunk);
    },
  });
  return { stream, result: () => ({ bytes, sha256: hash.digest('hex') }) };
}

/**
 * gzip `src` into `dest` (or gunzip it), hashing the raw and the compressed side; progress: raw bytes so far.
 * Exported for the benchmark, which also runs it on a main thread to compare.
 */
export async function zipStream({ src, dest, level }, gunzip, progress = () => {}) {
  let posted = 0;
  const raw = tap((n) => {
    if (n - posted < PROGRESS_EVERY) return;
    posted = n;
    progress(n);
  });
  const gz = tap();
  const read = createReadStream(src, { highWaterMark: 1 << 20 });
  const write = createWriteStream(dest, { mode: 0o600 });
  if (gunzip) await pipeline(read, gz.stream, createGunzip({ chunkSize: 1 << 16 }), raw.stream, write);
  else await pipeline(read, raw.stream, createGzip({ level, chunkSize: 1 << 16 }), gz.stream, write);
  const r = raw.result();
  const g = gz.result();
  return { rawBytes: r.bytes, rawSha256: r.sha256, gzBytes: g.bytes, gzSha256: g.sha256 };
}

const ops = {
  gzip: (args, progress) => zipStream(args, false, progress),
  gunzip: (args, progress) => zipStream(args, true, progress),

  /** an online, consistent copy of a live database (never a copy of its file) */
  async backup({ src, dest, method }) {
    const db = open(src);
    try {
      if (method === 'vacuum-into') db.prepare('VACUUM INTO ?').run(dest);
      // one step: the copy reads one snapshot (WAL readers do not block the writer), so no restart by writes
      else await db.backup(dest, { progress: () => 1 << 30 });
    } finally {
      db.close();
    }
    const copy = open(dest);
    try {
      return {
        bytes: statSync(dest).size,
        pageSize: copy.pragma('page_size', { simple: true }),
        pageCount: copy.pragma('page_count', { simple: true }),
      };
    } finally {
      copy.close();
    }
  },

  /** the seed's validation checklist (§5.2) on one file */
  check({ path, integrity = 'full', foreignKeys = true, rowsOf = [], sql = [], peek = false }) {
    let db;
    try {
      db = open(path, { peek });
    } catch (err) {
      return { openError: `${err.code ?? 'ERROR'}: ${err.message}` };
    }
    try {
      const result = {
        integrity: [],
        foreignKeyViolations: 0,
        ...counts(db),
        tableNames: tableNames(db),
        rows: {},
        sql: [],
      };
      if (integrity !== 'none') {
        const pragma = integrity === 'quick' ? 'quick_check(20)' : 'integrity_check(20)';
        result.integrity = db.prepare(`PRAGMA ${pragma}`).pluck().all().map(String);
      }
      if (foreignKeys) result.foreignKeyViolations = db.prepare('PRAGMA foreign_key_check').all().length;
      for (const t of rowsOf)
        result.rows[t] = result.tableNames.includes(t)
          ? db
              .prepare(`SELECT count(*) FROM ${quote(t)}`)
              .pluck()
              .get()
          : null;
      for (const q of sql) {
        try {
          const stmt = db.prepare(q.query);
          if (!stmt.reader) throw new Error('not a read-only query');
          const row = stmt.raw().get();
          result.sql.push({ query: q.query, value: row === undefined ? null : (row[0] ?? null) });
        } catch (err) {
          result.sql.push({ query: q.query, error: err.message });
        }
      }
      result.schemaDigest = schemaDigest(db);
      result.pageSize = db.pragma('page_size', { simple: true });
      result.pageCount = db.pragma('page_count', { simple: true });
      result.freelistCount = db.pragma('freelist_count', { simple: true });
      return result;
    } catch (err) {
      // a file that is not a database at all (or whose header is gone) is a finding, not a crash
      return { openError: `${err.code ?? 'ERROR'}: ${err.message}` };
    } finally {
      if (db.open) db.close();
    }
  },

  /**
   * What sqlite_master holds (virtual tables marked), which tables reference which (declared foreign keys), and
   * the row counts of `rowsOf` (null for a table that is not there).
   */
  objects({ path, rowsOf = [], peek = false }) {
    const db = open(path, { peek });
    try {
      const objects = db
        .prepare(`SELECT type, name, tbl_name AS tableName, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'`)
        .all()
        .map((o) => ({
          type: o.type,
          name: o.name,
          tableName: o.tableName,
          virtual: o.type === 'table' && /^CREATE\s+VIRTUAL\s+TABLE/i.test(o.sql ?? ''),
        }));
      const tables = objects.filter((o) => o.type === 'table').map((o) => o.name);
      const foreignKeys = [];
      for (const table of tables) {
        const parents = db.prepare('SELECT DISTINCT "table" FROM pragma_foreign_key_list(?)').pluck().all(table);
        for (const parent of parents) foreignKeys.push({ table, parent });
      }
      const rows = {};
      for (const t of rowsOf)
        rows[t] = tables.includes(t)
          ? db
              .prepare(`SELECT count(*) FROM ${quote(t)}`)
              .pluck()
              .get()
          : null;
      return { objects, foreignKeys, rows };
    } finally {
      db.close();
    }
  },

  /** content digests of tables (rows in rowid order) and of the schema */
  digests({ path, tables, peek = false }) {
    const db = open(path, { peek });
    try {
      const out = {};
      for (const t of tables ?? tableNames(db)) {
        const hash = createHash('sha256');
        let rows = 0;
        // a WITHOUT ROWID table (FTS5 keeps two) has no rowid: it is stored, and scanned, in primary-key order
        const withoutRowid = db.prepare(`SELECT 1 FROM pragma_table_list WHERE name = ? AND wr = 1`).get(t);
        for (const r of db
          .prepare(`SELECT * FROM ${quote(t)}${withoutRowid ? '' : ' ORDER BY rowid'}`)
          .raw()
          .iterate()) {
          hash.update(
            JSON.stringify(r, (_k, v) =>
              Buffer.isBuffer(v) ? `x'${v.toString('hex')}'` : typeof v === 'bigint' ? String(v) : v,
            ),
          );
          hash.update('\n');
          rows++;
        }
        out[t] = { rows, sha256: hash.digest('hex') };
      }
      return { schemaDigest: schemaDigest(db), tables: out };
    } finally {
      db.close();
    }
  },

  /** PRAGMA wal_checkpoint(mode): busy = 1 when a reader or writer kept it from completing */
  checkpoint({ path, mode }) {
    const db = open(path, { readonly: false });
    try {
      const [r] = db.pragma(`wal_checkpoint(${mode})`);
      return { busy: r.busy, log: r.log, checkpointed: r.checkpointed };
    } finally {
      db.close();
    }
  },

  vacuum({ path }) {
    const db = open(path, { readonly: false });
    try {
      db.exec('VACUUM');
      return { pageCount: db.pragma('page_count', { simple: true }) };
    } finally {
      db.close();
    }
  },

  /**
   * A new database from an SQL script (a fresh start's `init.sqlFile`): the file must not exist; the script runs
   * whole in one transaction (nothing of it stays when any statement fails), in the journal mode asked for.
   */
  init({ path, sql, journalMode = 'WAL' }) {
    const db = new Database(path, { fileMustExist: false });
    try {
      if (db.prepare('SELECT count(*) FROM sqlite_master').pluck().get() !== 0)
        throw new Error(`${path} is not empty: init creates a database, it never runs over one`);
      db.pragma(`journal_mode = ${journalMode === 'DELETE' ? 'DELETE' : 'WAL'}`);
      db.transaction(() => db.exec(sql))();
      return { ...counts(db), schemaDigest: schemaDigest(db) };
    } finally {
      db.close();
    }
  },

  /** statements in one transaction; ROLLBACK on any error */
  transaction({ path, statements }) {
    const db = open(path, { readonly: false });
    try {
      const changes = [];
      db.transaction(() => {
        for (const s of statements) changes.push(db.prepare(s).run().changes);
      })();
      return { changes };
    } finally {
      db.close();
    }
  },
};

// run by thread.ts as a worker (imported elsewhere, the module only exports zipStream)
if (!isMainThread && workerData?.op) {
  const { op, args } = workerData;
  try {
    const result = await ops[op](args, (progress) => parentPort.postMessage({ progress }));
    parentPort.postMessage({ ok: true, result });
  } catch (err) {
    parentPort.postMessage({ ok: false, error: { message: err.message, code: err.code ?? null, name: err.name } });
  }
}
