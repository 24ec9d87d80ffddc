import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../src/dev/ports.js';
import { repoRoot } from '../src/dev/temporal-server.js';
import {
  MILESTONES,
  SCHEMA,
  SCHEMA_SQL_PATH,
  SQLITE_MASTER_COUNTS,
  schemaSqlFor,
} from '../src/demo/sqlite-app/schema.js';
import { seedSqliteDatabase } from '../src/demo/sqlite-app/seed.js';
import { until } from './support/wait.js';

/** The demo SQLite application: its schema, its seed and its service (no Temporal involved). */
const SERVICE = join(repoRoot, 'src/demo/sqlite-app/service.mjs');
const MB = 1024 * 1024;

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'sqlite-demo-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  // KEEP_TEST_FILES=1 keeps the databases and logs
  if (process.env.KEEP_TEST_FILES !== '1') for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

type Objects = Record<'table' | 'index' | 'trigger', string[]>;
function objects(db: Database.Database): Objects {
  const rows = db
    .prepare("SELECT type, name FROM sqlite_master WHERE type IN ('table', 'index', 'trigger') ORDER BY name")
    .all() as Array<{ type: keyof Objects; name: string }>;
  const out: Objects = { table: [], index: [], trigger: [] };
  for (const r of rows) out[r.type].push(r.name);
  return out;
}
const sorted = (...lists: (readonly string[])[]) => lists.flat().sort();
const expected = (milestones: readonly (typeof MILESTONES)[number][]): Objects => {
  const parts = milestones.map((m) => SCHEMA[m]);
  return {
    table: sorted(...parts.flatMap((p) => [p.tables, p.shadowTables])),
    index: sorted(...parts.map((p) => p.indexes)),
    trigger: sorted(...parts.map((p) => p.triggers)),
  };
};

// spec §2.3 step 3 (plus the FTS5 table, which the vector milestone's manifest names) and §2.2 step 2, verbatim
const VECTOR_ROLLBACK = `
DROP TABLE IF EXISTS document_embeddings;
DROP TABLE IF EXISTS document_embeddings_data;
DROP TABLE IF EXISTS document_search;
UPDATE document_index SET sync_status = 'pending', embedding_blob = NULL;`;
const MEMORY_ROLLBACK = `
DROP TABLE IF EXISTS sessions;
DROP TABLE IF EXISTS memory_entries;
DROP TABLE IF EXISTS document_index;
${SCHEMA.memory.indexes.map((i) => `DROP INDEX IF EXISTS ${i};`).join('\n')}`;

interface Stats {
  pid: number;
  writes: number;
  writeErrors: number;
  lastError: { code: string; message: string } | null;
  tasks: number;
  milestones: { memory: boolean; vector: boolean };
  flags: { semanticSearch: boolean; backgroundDocumentSync: boolean; embeddingGeneration: boolean };
  integrity: { status: string };
}

/** service.mjs as a child process on a free port; stdout and stderr go to out.log in logDir. */
async function startService(db: string, extra: string[] = [], logDir = dirname(db)) {
  const port = await freePort();
  const out = openSync(join(logDir, 'out.log'), 'a');
  const child = spawn(process.execPath, [SERVICE, '--db', db, '--port', String(port), ...extra], {
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  children.push(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const base = `http://127.0.0.1:${port}`;
  const get = async (path: string) => {
    const r = await fetch(base + path);
    return { status: r.status, body: (await r.json()) as any };
  };
  const stats = async () => (await get('/stats')).body as Stats;
  await until('the service to answer', () =>
    get('/stats').then(
      () => true,
      () => undefined,
    ),
  );
  const stop = async () => {
    child.kill('SIGTERM');
    return exited;
  };
  return { child, port, get, stats, stop, exited };
}

const flags = (semantic: boolean, sync = true, embed = true) =>
  [
    '# vector search milestone flags',
    `SEMANTIC_SEARCH_ENABLED=${semantic}`,
    `BACKGROUND_DOCUMENT_SYNC=${sync}`,
    `EMBEDDING_GENERATION=${embed}`,
    '',
  ].join('\n');

describe('schema.sql', () => {
  it('creates what schema.ts lists, per milestone, and nothing else; running it twice changes nothing', () => {
    const sql = readFileSync(SCHEMA_SQL_PATH, 'utf8');
    const db = new Database(':memory:');
    expect(db.pragma('compile_options', { simple: false })).toContainEqual({ compile_options: 'ENABLE_FTS5' });
    db.exec(sql);
    const all = objects(db);
    expect(all).toEqual(expected(MILESTONES));
    db.exec(sql);
    expect(objects(db)).toEqual(all);
    expect({ table: all.table.length, index: all.index.length, trigger: all.trigger.length }).toEqual(
      SQLITE_MASTER_COUNTS.all,
    );
    expect(db.prepare("SELECT name FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL TABLE%'").pluck().all()).toEqual(
      SCHEMA.vector.virtualTables,
    );

    const coreAndMemory = new Database(':memory:');
    coreAndMemory.exec(schemaSqlFor(['memory']));
    const cm = objects(coreAndMemory);
    expect(cm).toEqual(expected(['core', 'memory']));
    // the spec's restore check: "Expected: 9 tables", "33+ indexes"
    expect(cm.table).toHaveLength(9);
    expect(cm.index.length).toBeGreaterThanOrEqual(33);
    expect({ table: cm.table.length, index: cm.index.length, trigger: cm.trigger.length }).toEqual(
      SQLITE_MASTER_COUNTS.coreAndMemory,
    );
    expect(SCHEMA.memory.indexes).toHaveLength(16);
    expect(() => schemaSqlFor(['vector'])).toThrow(/needs the memory milestone/);
  });
});

describe('seedSqliteDatabase', () => {
  it('fills a WAL-mode database to the target size with consistent rows, fast', async () => {
    const path = join(tempDir(), 'abathur.db');
    const started = Date.now();
    const { bytes, rows } = await seedSqliteDatabase(path, { targetBytes: 20 * MB });
    const ms = Date.now() - started;
    expect(ms).toBeLessThan(10_000);
    expect(bytes).toBe(statSync(path).size);
    expect(bytes).toBeGreaterThanOrEqual(20 * MB);
    expect(bytes).toBeLessThan(21 * MB);
    expect(existsSync(`${path}-wal`)).toBe(false);
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(db.pragma('foreign_key_check')).toEqual([]);
    expect(objects(db)).toEqual(expected(MILESTONES));
    for (const [table, n] of Object.entries(rows)) {
      expect(db.prepare(`SELECT count(*) FROM ${table}`).pluck().get(), table).toBe(n);
      expect(n, table).toBeGreaterThan(0);
    }
    expect(rows.tasks).toBeGreaterThan(3000);
    // documents are mostly embedded and synced; the others wait for the background sync
    const status = db.prepare('SELECT sync_status, count(*) AS n FROM document_index GROUP BY 1 ORDER BY 1').all();
    expect(status).toEqual([
      { sync_status: 'pending', n: Math.floor(rows.document_index! / 10) },
      { sync_status: 'synced', n: rows.document_index! - Math.floor(rows.document_index! / 10) },
    ]);
    const payload = db.prepare('SELECT avg(length(prompt)) FROM tasks').pluck().get() as number;
    expect(payload).toBeGreaterThan(300);
    db.close();
    await expect(seedSqliteDatabase(path, { targetBytes: MB })).rejects.toThrow(/exists/);
  });

  it('without the vector milestone: the 9 tables and 35 indexes the spec expects after a restore', async () => {
    const path = join(tempDir(), 'abathur.db');
    const { rows } = await seedSqliteDatabase(path, { targetBytes: 4 * MB, milestones: ['memory'] });
    expect(Object.keys(rows).sort()).toEqual(sorted(SCHEMA.core.tables, SCHEMA.memory.tables));
    const db = new Database(path, { readonly: true });
    expect(objects(db)).toEqual(expected(['core', 'memory']));
    expect(
      db.prepare('SELECT DISTINCT sync_status FROM document_index WHERE embedding_blob IS NULL').pluck().all(),
    ).toEqual(['pending']);
    db.close();
  });

  it("the spec's rollbacks apply: vector (§2.3) then memory (§2.2) leaves the core; memory first is refused", async () => {
    const path = join(tempDir(), 'abathur.db');
    await seedSqliteDatabase(path, { targetBytes: 4 * MB });
    const db = new Database(path);
    db.pragma('foreign_keys = ON');
    // document_embeddings rows point at document_index: dropping it first fails (and changes nothing)
    expect(() => db.exec(`BEGIN; ${MEMORY_ROLLBACK} COMMIT;`)).toThrow(/FOREIGN KEY constraint failed/);
    if (db.inTransaction) db.exec('ROLLBACK');
    expect(objects(db)).toEqual(expected(MILESTONES));

    db.exec(VECTOR_ROLLBACK);
    expect(objects(db)).toEqual(expected(['core', 'memory']));
    expect(db.prepare('SELECT count(*) FROM document_index WHERE embedding_blob IS NOT NULL').pluck().get()).toBe(0);
    db.exec(MEMORY_ROLLBACK);
    expect(objects(db)).toEqual(expected(['core']));
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(db.pragma('foreign_key_check')).toEqual([]);
    db.close();
  });
});

describe('service.mjs', () => {
  it('writes committed transactions continuously: tasks and the WAL grow; SIGTERM exits 0 and checkpoints', async () => {
    const dir = tempDir();
    const db = join(dir, 'abathur.db');
    const { rows } = await seedSqliteDatabase(db, { targetBytes: 20 * MB });
    const svc = await startService(db, ['--error-log', join(dir, 'errors.log')]);

    const health = await svc.get('/health');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: 'healthy', milestones: { memory: true, vector: true } });
    expect(health.body.tasks).toBeGreaterThanOrEqual(rows.tasks!);

    const first = await until('a write', async () => ((await svc.stats()).writes > 0 ? true : undefined));
    expect(first).toBe(true);
    const wal = `${db}-wal`;
    const walBefore = statSync(wal).size;
    const before = await svc.stats();
    await new Promise((r) => setTimeout(r, 600));
    const after = await svc.stats();
    expect(after.writes).toBeGreaterThan(before.writes + 3);
    expect(after.tasks).toBeGreaterThan(before.tasks);
    expect(after.tasks).toBeGreaterThanOrEqual(rows.tasks! + after.writes);
    expect(statSync(wal).size).toBeGreaterThan(walBefore);
    expect(after).toMatchObject({ writeErrors: 0, lastError: null, pid: svc.child.pid });
    // the rows other connections see are committed ones
    const reader = new Database(db, { readonly: true });
    expect(reader.prepare('SELECT count(*) FROM tasks').pluck().get()).toBeGreaterThanOrEqual(after.tasks);
    expect(
      reader.prepare("SELECT value FROM state WHERE scope = 'service' AND key = 'last_write'").pluck().get(),
    ).toMatch(/"seq":\d+/);
    reader.close();
    await until('the startup check', async () => ((await svc.stats()).integrity.status === 'ok' ? true : undefined));

    expect(await svc.stop()).toEqual({ code: 0, signal: null });
    expect(existsSync(wal)).toBe(false);
    const check = new Database(db, { readonly: true });
    expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(check.pragma('foreign_key_check')).toEqual([]);
    check.close();
    expect(readFileSync(join(dir, 'out.log'), 'utf8')).toMatch(
      new RegExp(`pid=${svc.child.pid} sqlite demo listening on 127\\.0\\.0\\.1:${svc.port} db=`),
    );
    expect(existsSync(join(dir, 'errors.log'))).toBe(false);
  });

  it('/search follows the flags file on SIGHUP, and falls back to exact match when the vector tables go', async () => {
    const dir = tempDir();
    const db = join(dir, 'abathur.db');
    await seedSqliteDatabase(db, { targetBytes: 8 * MB });
    const flagsFile = join(dir, 'flags.env');
    writeFileSync(flagsFile, flags(false));
    const svc = await startService(db, ['--flags-file', flagsFile]);

    const exact = await svc.get('/search?q=rollback');
    expect(exact.status).toBe(200);
    expect(exact.body.mode).toBe('exact');
    expect(exact.body.results.length).toBeGreaterThan(0);
    for (const r of exact.body.results) expect(r.title).toBeTypeOf('string');

    writeFileSync(flagsFile, flags(true));
    svc.child.kill('SIGHUP');
    await until('the reload', async () => ((await svc.stats()).flags.semanticSearch ? true : undefined));
    const semantic = await svc.get('/search?q=rollback%20checkpoint');
    expect(semantic.body.mode).toBe('semantic');
    expect(semantic.body.results.length).toBeGreaterThan(0);
    expect(semantic.body.results[0].score).toBeGreaterThan(0);

    // the background sync embeds new documents while both flags are on
    const embedded = new Database(db, { readonly: true });
    const synced = () =>
      embedded.prepare("SELECT count(*) FROM document_index WHERE sync_status = 'synced'").pluck().get() as number;
    const syncedBefore = synced();
    await until('documents embedded', () => (synced() > syncedBefore ? true : undefined));
    embedded.close();

    // spec §2.3 run against the live service: its writes go on, /search falls back although the flag is on
    const admin = new Database(db, { timeout: 5000 });
    admin.exec(VECTOR_ROLLBACK);
    admin.close();
    await until('the schema change', async () => ((await svc.stats()).milestones.vector ? undefined : true));
    const fallback = await svc.get('/search?q=rollback');
    expect(fallback.body.mode).toBe('exact');
    const s1 = await svc.stats();
    const s2 = await until('writes after the schema change', async () => {
      const s = await svc.stats();
      return s.writes > s1.writes ? s : undefined;
    });
    expect(s2.writeErrors).toBe(s1.writeErrors);

    writeFileSync(flagsFile, flags(false, false, false));
    svc.child.kill('SIGHUP');
    await until('the second reload', async () => ((await svc.stats()).flags.backgroundDocumentSync ? undefined : true));
    expect(await svc.stop()).toEqual({ code: 0, signal: null });
  });

  it('a new file gets the whole schema; a file whose milestones were rolled back is not re-initialised', async () => {
    const dir = tempDir();
    const db = join(dir, 'nested', 'abathur.db');
    const fresh = await startService(db, ['--write-interval-ms', '20'], dir);
    expect(readFileSync(join(dir, 'out.log'), 'utf8')).toContain(`initialised ${db} from ${SCHEMA_SQL_PATH}`);
    expect((await fresh.get('/health')).body).toMatchObject({
      status: 'healthy',
      milestones: { memory: true, vector: true },
    });
    await until('writes', async () => ((await fresh.stats()).writes > 5 ? true : undefined));
    expect(await fresh.stop()).toEqual({ code: 0, signal: null });
    let conn = new Database(db);
    expect(objects(conn)).toEqual(expected(MILESTONES));
    conn.pragma('foreign_keys = ON');
    conn.exec(VECTOR_ROLLBACK);
    conn.exec(MEMORY_ROLLBACK);
    conn.close();

    const again = await startService(db, [], dir);
    const health = await again.get('/health');
    expect(health.status).toBe(200);
    expect(health.body.milestones).toMatchObject({ memory: false, vector: false });
    const s1 = await again.stats();
    await until('core writes', async () => ((await again.stats()).writes > s1.writes + 3 ? true : undefined));
    expect((await again.stats()).writeErrors).toBe(0);
    expect((await again.get('/search?q=x')).body.mode).toBe('unavailable');
    expect(await again.stop()).toEqual({ code: 0, signal: null });
    conn = new Database(db, { readonly: true });
    expect(objects(conn)).toEqual(expected(['core']));
    conn.close();
  });

  it('4 KiB of garbage in the middle of the file: /health 503 and an ERROR line; SIGTERM still exits 0', async () => {
    const dir = tempDir();
    const db = join(dir, 'abathur.db');
    const errorLog = join(dir, 'errors.log');
    await seedSqliteDatabase(db, { targetBytes: 20 * MB });
    const svc = await startService(db, ['--error-log', errorLog]);
    await until('writes', async () => ((await svc.stats()).writes > 3 ? true : undefined));
    expect((await svc.get('/health')).status).toBe(200);
    expect(await svc.stop()).toEqual({ code: 0, signal: null });

    // the page in the middle of the file (or the next one that belongs to a table or an index)
    const size = statSync(db).size;
    const probe = new Database(db, { readonly: true });
    let page = Math.floor(size / 2 / 4096) + 1;
    while (!probe.prepare('SELECT name FROM dbstat WHERE pageno = ?').pluck().get(page)) page += 1;
    probe.close();
    const fd = openSync(db, 'r+');
    writeSync(fd, randomBytes(4096), 0, 4096, (page - 1) * 4096);
    closeSync(fd);

    const broken = await startService(db, ['--error-log', errorLog]);
    const unhealthy = await until('/health 503', async () => {
      const h = await broken.get('/health');
      return h.status === 503 ? h : undefined;
    });
    expect(unhealthy.body).toMatchObject({ status: 'unhealthy' });
    expect(unhealthy.body.error).toMatch(/^SQLITE_CORRUPT/);
    expect(readFileSync(errorLog, 'utf8')).toMatch(
      new RegExp(`^\\S+ pid=${broken.child.pid} ERROR SQLITE_CORRUPT\\S* .+$`, 'm'),
    );
    expect((await broken.get('/health')).status).toBe(503);
    expect(await broken.stop()).toEqual({ code: 0, signal: null });
  });

  it('a damaged header (not a database): /health 503 SQLITE_NOTADB and ERROR lines, the service keeps answering', async () => {
    const dir = tempDir();
    const db = join(dir, 'abathur.db');
    const errorLog = join(dir, 'errors.log');
    await seedSqliteDatabase(db, { targetBytes: 2 * MB });
    const fd = openSync(db, 'r+');
    writeSync(fd, randomBytes(100), 0, 100, 0);
    closeSync(fd);

    const svc = await startService(db, ['--error-log', errorLog]);
    const health = await svc.get('/health');
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ status: 'unhealthy' });
    expect(health.body.error).toMatch(/^SQLITE_NOTADB /);
    const stats = await until('failed writes', async () => {
      const s = await svc.stats();
      return s.writeErrors > 2 ? s : undefined;
    });
    expect(stats.writes).toBe(0);
    expect(stats.lastError?.code).toBe('SQLITE_NOTADB');
    const lines = readFileSync(errorLog, 'utf8').trim().split('\n');
    expect(lines.some((l) => / ERROR SQLITE_NOTADB .* op=health$/.test(l))).toBe(true);
    expect(lines.some((l) => / ERROR SQLITE_NOTADB .* op=write/.test(l))).toBe(true);
    expect(await svc.stop()).toEqual({ code: 0, signal: null });
  });
});
