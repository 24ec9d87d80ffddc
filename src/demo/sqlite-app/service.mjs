#!/usr/bin/env node
// The demo SQLite application ("abathur") the SQLite rollback / disaster-recovery runbooks act on: one WAL-mode
// database file, written continuously (one committed transaction per tick), with /health, /stats, /flags and /search.
//
//   service.mjs --db <path> [--port 8790] [--flags-file <env file>] [--write-interval-ms 50] [--error-log <path>]
//               [--startup-check quick|off]
//
// A file without a `tasks` table gets the whole schema.sql; an existing file is never re-initialised (a milestone
// rollback drops that milestone's tables and they stay dropped). Which milestones are there is read from
// sqlite_master whenever the schema changes. The flags file (re-read on SIGHUP) gates the vector milestone:
// BACKGROUND_DOCUMENT_SYNC (documents are indexed), EMBEDDING_GENERATION (documents are embedded) and
// SEMANTIC_SEARCH_ENABLED (/search ranks by embedding instead of the exact-match LIKE fallback of spec §2.3).
//
// Errors (a write, /health, /search, the flags file) are lines `<iso> pid=N ERROR <code> <message> op=<op>` on stderr
// and in --error-log; the service keeps running and the next tick retries. /health is a cheap check (core tables
// exist, count of tasks). Page-level damage a cheap query does not reach is found by the startup check: a
// `PRAGMA quick_check` run once in a child process (so /health answers meanwhile and SIGTERM can stop it at once);
// until it finishes /health says integrity "checking", and once it (or any query) has met SQLITE_CORRUPT or
// SQLITE_NOTADB /health stays 503 until restart.
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readEnvFile } from '../read-env-file.mjs';
import { WORDS } from './words.mjs';

const SCHEMA_SQL = fileURLToPath(new URL('./schema.sql', import.meta.url));
const CORE_TABLES = ['agents', 'tasks', 'audit', 'checkpoints', 'state', 'metrics'];
const MEMORY_TABLES = ['sessions', 'memory_entries', 'document_index'];
const VECTOR_TABLES = ['document_embeddings', 'document_embeddings_data'];
const FTS_TABLE = 'document_search';
const EMBEDDING_MODEL = 'all-minilm:l6-v2';
const DIMENSIONS = 384;
const FLAG_NAMES = {
  semanticSearch: 'SEMANTIC_SEARCH_ENABLED',
  backgroundDocumentSync: 'BACKGROUND_DOCUMENT_SYNC',
  embeddingGeneration: 'EMBEDDING_GENERATION',
};

const { values: args } = parseArgs({
  options: {
    db: { type: 'string' },
    port: { type: 'string', default: '8790' },
    'flags-file': { type: 'string' },
    'write-interval-ms': { type: 'string', default: '50' },
    'error-log': { type: 'string' },
    'startup-check': { type: 'string', default: 'quick' },
    // internal: the startup check's child process
    'quick-check-only': { type: 'boolean', default: false },
  },
});
if (!args.db) {
  console.error(
    'usage: service.mjs --db <path> [--port N] [--flags-file <path>] [--write-interval-ms N] [--error-log <path>]',
  );
  process.exit(2);
}
const dbPath = resolve(args.db);

if (args['quick-check-only']) {
  // The startup check, in its own process: prints one JSON line and exits.
  let result;
  try {
    const d = new Database(dbPath, { readonly: true, fileMustExist: true, timeout: 5000 });
    try {
      const rows = d.pragma('quick_check(5)').map((r) => r.quick_check);
      result = rows.length === 1 && rows[0] === 'ok' ? { ok: true } : { ok: false, code: 'SQLITE_CORRUPT', rows };
    } finally {
      d.close();
    }
  } catch (err) {
    result = { ok: false, code: err.code ?? err.name, message: err.message };
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

const port = Number(args.port);
const intervalMs = Number(args['write-interval-ms']);
if (!Number.isInteger(port) || !(intervalMs >= 1) || !['quick', 'off'].includes(args['startup-check'])) {
  console.error('--port and --write-interval-ms must be positive integers, --startup-check quick or off');
  process.exit(2);
}
const flagsFile = args['flags-file'] ? resolve(args['flags-file']) : undefined;
const errorLog = args['error-log'] ? resolve(args['error-log']) : undefined;
if (errorLog) mkdirSync(dirname(errorLog), { recursive: true });

const log = (msg) => process.stdout.write(`${new Date().toISOString()} pid=${process.pid} ${msg}\n`);

const stats = { pid: process.pid, writes: 0, writeErrors: 0, lastError: null, reloads: 0 };
/** codes after which the file is known damaged: /health stays 503 until restart */
const isCorruption = (code) => /^SQLITE_(CORRUPT|NOTADB)/.test(String(code));
let corruption = null;

// Identical errors (same op, code and message) are written at most once a second; the next line says how many
// were left out.
const lastLogged = new Map();
function logError(op, err) {
  const code = err?.code ?? err?.name ?? 'ERROR';
  const message = String(err?.message ?? err).replace(/\s+/g, ' ');
  if (isCorruption(code) && !corruption) corruption = { code, message, op };
  const key = `${op}\0${code}\0${message}`;
  const now = Date.now();
  const seen = lastLogged.get(key);
  if (seen && now - seen.at < 1000) {
    seen.suppressed += 1;
    return { code, message };
  }
  const repeated = seen?.suppressed ? ` (+${seen.suppressed} like it not logged)` : '';
  lastLogged.set(key, { at: now, suppressed: 0 });
  const line = `${new Date().toISOString()} pid=${process.pid} ERROR ${code} ${message} op=${op}${repeated}\n`;
  process.stderr.write(line);
  if (errorLog) {
    try {
      appendFileSync(errorLog, line);
    } catch (e) {
      process.stderr.write(`${new Date().toISOString()} pid=${process.pid} cannot write ${errorLog}: ${e.message}\n`);
    }
  }
  return { code, message };
}

// ---- flags

function readFlags() {
  return flagsFile ? readEnvFile(flagsFile) : {};
}
let rawFlags = {};
try {
  rawFlags = readFlags();
} catch (err) {
  logError('flags', err);
}
const on = (name) => String(rawFlags[name]).toLowerCase() === 'true';
const flagState = () => Object.fromEntries(Object.entries(FLAG_NAMES).map(([k, name]) => [k, on(name)]));

process.on('SIGHUP', () => {
  try {
    rawFlags = readFlags();
    stats.reloads += 1;
    log(`flags reloaded (reload #${stats.reloads}): ${JSON.stringify(flagState())}`);
  } catch (err) {
    logError('flags', err); // keeps the flags it had
  }
});

// ---- the database

let db;
let schemaVersion;
let milestones = { memory: false, vector: false, fts: false };
let sql;

function openDb() {
  mkdirSync(dirname(dbPath), { recursive: true });
  const d = new Database(dbPath, { timeout: 5000 });
  try {
    d.pragma('busy_timeout = 5000');
    d.pragma('journal_mode = WAL');
    d.pragma('foreign_keys = ON');
    const hasTasks = d.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tasks'").get();
    if (!hasTasks) {
      d.exec(readFileSync(SCHEMA_SQL, 'utf8'));
      log(`initialised ${dbPath} from ${SCHEMA_SQL}`);
    }
  } catch (err) {
    d.close();
    throw err;
  }
  return d;
}

/** Opens the database when it is not open (a failed open is retried on the next tick or request). */
function database() {
  if (!db) {
    db = openDb();
    schemaVersion = undefined;
  }
  return db;
}

/** Re-reads which milestones exist and re-prepares the statements when the schema changed. */
function refreshSchema() {
  const d = database();
  const version = d.pragma('schema_version', { simple: true });
  if (version === schemaVersion) return;
  const names = new Set(d.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all());
  const next = {
    memory: MEMORY_TABLES.every((t) => names.has(t)),
    vector: VECTOR_TABLES.every((t) => names.has(t)),
    fts: names.has(FTS_TABLE),
  };
  sql = prepareStatements(d, next);
  if (schemaVersion !== undefined && JSON.stringify(next) !== JSON.stringify(milestones))
    log(`schema changed: milestones ${JSON.stringify(next)}`);
  milestones = next;
  schemaVersion = version;
}

function prepareStatements(d, m) {
  const p = (text) => d.prepare(text);
  const s = {
    insertAgent: p('INSERT INTO agents (name, specialization, model, state, config) VALUES (?, ?, ?, ?, ?)'),
    lastAgent: p('SELECT max(id) FROM agents').pluck(),
    insertTask: p(`INSERT INTO tasks (agent_id, parent_task_id, session_id, template_name, prompt, input_data, status,
      priority, started_at) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`),
    finishTask: p('UPDATE tasks SET status = ?, result_data = ?, error_message = ? WHERE id = ?'),
    insertAudit: p('INSERT INTO audit (agent_id, task_id, action_type, action_data, result) VALUES (?, ?, ?, ?, ?)'),
    insertCheckpoint: p('INSERT INTO checkpoints (task_id, iteration, state) VALUES (?, ?, ?)'),
    insertMetric: p('INSERT INTO metrics (metric_name, metric_value, labels) VALUES (?, ?, ?)'),
    upsertState: p(`INSERT INTO state (scope, key, value, task_id) VALUES (?, ?, ?, ?)
      ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, task_id = excluded.task_id,
      updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`),
  };
  if (m.memory) {
    Object.assign(s, {
      insertSession: p(`INSERT INTO sessions (session_key, app_name, user_id, project_id, agent_id, status, events,
        state, metadata) VALUES (?, 'abathur', ?, ?, ?, 'active', ?, ?, ?)`),
      updateSession: p(`UPDATE sessions SET events = ?, state = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE id = ?`),
      insertMemory: p(`INSERT INTO memory_entries (namespace, key, value, memory_type, session_id, task_id, metadata,
        created_by, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      updateMemory: p('UPDATE memory_entries SET value = ?, updated_by = ? WHERE id = ?'),
      insertDocument: p(`INSERT INTO document_index (file_path, title, document_type, content_hash, chunk_count,
        metadata) VALUES (?, ?, ?, ?, ?, ?)`),
      nextPending: p(`SELECT id, title, metadata FROM document_index WHERE sync_status = 'pending'
        ORDER BY updated_at LIMIT 1`),
      exactSearch: p(`SELECT id, file_path, title, document_type, sync_status FROM document_index
        WHERE title LIKE ? OR metadata LIKE ? ORDER BY id DESC LIMIT ?`),
    });
  }
  if (m.memory && m.vector) {
    Object.assign(s, {
      setBlob: p(`UPDATE document_index SET embedding_blob = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE id = ?`),
      clearEmbeddingData: p(
        'DELETE FROM document_embeddings_data WHERE embedding_id IN (SELECT id FROM document_embeddings WHERE document_id = ?)',
      ),
      clearEmbeddings: p('DELETE FROM document_embeddings WHERE document_id = ?'),
      insertEmbedding: p(
        'INSERT INTO document_embeddings (document_id, chunk_index, model, dimensions) VALUES (?, 0, ?, ?)',
      ),
      insertEmbeddingData: p('INSERT INTO document_embeddings_data (embedding_id, vector) VALUES (?, ?)'),
      vectorsOf: p(`SELECT e.document_id AS id, d.vector AS vector FROM document_embeddings e
        JOIN document_embeddings_data d ON d.embedding_id = e.id WHERE e.document_id = ?`),
      latestVectors: p(`SELECT e.document_id AS id, d.vector AS vector FROM document_embeddings e
        JOIN document_embeddings_data d ON d.embedding_id = e.id ORDER BY e.id DESC LIMIT ?`),
      documentById: p('SELECT id, file_path, title, document_type, sync_status FROM document_index WHERE id = ?'),
    });
    if (m.fts) {
      Object.assign(s, {
        ftsDelete: p(`DELETE FROM ${FTS_TABLE} WHERE rowid = ?`),
        ftsInsert: p(`INSERT INTO ${FTS_TABLE} (rowid, title, body) VALUES (?, ?, ?)`),
        ftsCandidates: p(`SELECT rowid FROM ${FTS_TABLE} WHERE ${FTS_TABLE} MATCH ? ORDER BY rank LIMIT 200`).pluck(),
      });
    }
  }
  return s;
}

// ---- realistic text

const pick = (list) => list[Math.floor(Math.random() * list.length)];
function sentence(min = 6, max = 16) {
  const n = min + Math.floor(Math.random() * (max - min + 1));
  const words = Array.from({ length: n }, () => pick(WORDS));
  words[0] = words[0][0].toUpperCase() + words[0].slice(1);
  return `${words.join(' ')}.`;
}
function text(bytes) {
  let out = '';
  while (out.length < bytes) out += `${sentence()} `;
  return out.slice(0, bytes).trimEnd();
}
const between = (lo, hi) => lo + Math.floor(Math.random() * (hi - lo + 1));

/** A deterministic stand-in for an embedding model: hashed word features, normalised (seed.ts uses the same). */
function embed(input) {
  const v = new Float32Array(DIMENSIONS);
  for (const word of input.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
    let h = 2166136261;
    for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 16777619);
    h >>>= 0;
    v[h % DIMENSIONS] += h & 0x10000 ? 1 : -1;
  }
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < v.length; i++) v[i] /= norm;
  return Buffer.from(v.buffer);
}
function cosine(a, b) {
  const x = new Float32Array(a.buffer, a.byteOffset, a.byteLength / 4);
  const y = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  let dot = 0;
  for (let i = 0; i < Math.min(x.length, y.length); i++) dot += x[i] * y[i];
  return dot;
}

// ---- the writer

const run = `${Date.now().toString(36)}-${process.pid}`;
let seq = 0;
let agentId;
let sessionId;
let sessionEvents = [];
let lastTaskId;
let lastMemoryId;
const TEMPLATES = ['code-review', 'schema-migration', 'doc-summary', 'test-triage', 'incident-digest', 'refactor'];
const SPECIALIZATIONS = ['planner', 'reviewer', 'implementer', 'researcher', 'tester'];
const ACTIONS = ['task_started', 'tool_call', 'memory_write', 'llm_request', 'task_completed', 'checkpoint_saved'];
const METRICS = ['task_duration_ms', 'tokens_used', 'queue_depth', 'llm_latency_ms', 'memory_bytes'];
const DOC_TYPES = ['markdown', 'design', 'runbook', 'adr', 'api-reference'];

function embedDocument(id, title, body) {
  const vector = embed(`${title} ${body}`);
  sql.clearEmbeddingData.run(id);
  sql.clearEmbeddings.run(id);
  sql.setBlob.run(vector, id);
  const embeddingId = sql.insertEmbedding.run(id, EMBEDDING_MODEL, DIMENSIONS).lastInsertRowid;
  sql.insertEmbeddingData.run(embeddingId, vector);
  if (milestones.fts) {
    sql.ftsDelete.run(id);
    sql.ftsInsert.run(id, title, body);
  }
}

function writeOnce() {
  seq += 1;
  const n = seq;
  if (agentId === undefined) agentId = sql.lastAgent.get() ?? undefined;
  if (agentId === undefined || n % 200 === 0) {
    const config = JSON.stringify({ temperature: 0.2, max_tokens: 4096, tools: ['read', 'write', 'search'] });
    agentId = Number(
      sql.insertAgent.run(`agent-${run}-${n}`, pick(SPECIALIZATIONS), 'claude-sonnet', 'busy', config).lastInsertRowid,
    );
  }
  if (milestones.memory && (sessionId === undefined || n % 100 === 0)) {
    sessionEvents = [];
    const key = `session-${run}-${n}`;
    sessionId = Number(
      sql.insertSession.run(
        key,
        `user-${between(1, 40)}`,
        `project-${between(1, 8)}`,
        agentId,
        '[]',
        JSON.stringify({ cwd: '/srv/abathur', step: 0 }),
        JSON.stringify({ client: 'cli', note: text(120) }),
      ).lastInsertRowid,
    );
  }
  if (!milestones.memory) sessionId = undefined;

  const template = pick(TEMPLATES);
  const taskId = Number(
    sql.insertTask.run(
      agentId,
      lastTaskId !== undefined && n % 7 === 0 ? lastTaskId : null,
      sessionId !== undefined ? `session-${sessionId}` : null,
      template,
      text(between(250, 500)),
      JSON.stringify({ repo: `repo-${between(1, 30)}`, ref: `refs/heads/feature-${n}`, notes: text(80) }),
      between(0, 10),
    ).lastInsertRowid,
  );
  if (lastTaskId !== undefined) {
    const failed = Math.random() < 0.05;
    sql.finishTask.run(
      failed ? 'failed' : 'completed',
      failed ? null : JSON.stringify({ summary: text(between(150, 300)), tokens: between(500, 9000) }),
      failed ? `timeout after ${between(30, 300)}s: ${text(60)}` : null,
      lastTaskId,
    );
  }
  lastTaskId = taskId;
  sql.insertAudit.run(
    agentId,
    taskId,
    pick(ACTIONS),
    JSON.stringify({ template, tool: pick(['grep', 'edit', 'bash', 'read']), detail: text(between(120, 240)) }),
    'ok',
  );
  if (n % 5 === 0) sql.insertCheckpoint.run(taskId, n, JSON.stringify({ step: n, scratch: text(200) }));
  sql.insertMetric.run(pick(METRICS), Math.round(Math.random() * 10000) / 10, JSON.stringify({ template, run }));
  sql.upsertState.run('service', 'last_write', JSON.stringify({ run, seq: n, at: new Date().toISOString() }), taskId);
  if (n % 10 === 0)
    sql.upsertState.run(`task:${taskId}`, 'progress', JSON.stringify({ done: 1, notes: text(80) }), taskId);

  if (milestones.memory) {
    sessionEvents = [...sessionEvents.slice(-4), { seq: n, type: pick(ACTIONS), text: text(60) }];
    sql.updateSession.run(JSON.stringify(sessionEvents), JSON.stringify({ cwd: '/srv/abathur', step: n }), sessionId);
    const memoryId = Number(
      sql.insertMemory.run(
        `project:${between(1, 8)}:agent:${agentId}`,
        `${pick(WORDS)}-${run}-${n}`,
        text(between(200, 450)),
        pick(['semantic', 'episodic', 'procedural']),
        sessionId,
        taskId,
        JSON.stringify({ source: 'agent', confidence: Math.round(Math.random() * 100) / 100 }),
        `agent-${agentId}`,
        `agent-${agentId}`,
      ).lastInsertRowid,
    );
    if (lastMemoryId !== undefined && n % 4 === 0)
      sql.updateMemory.run(text(between(200, 450)), `agent-${agentId}`, lastMemoryId);
    lastMemoryId = memoryId;

    if (on(FLAG_NAMES.backgroundDocumentSync)) {
      const title = `${pick(WORDS)} ${pick(WORDS)} ${pick(WORDS)} guide ${n}`;
      const summary = text(between(150, 300));
      sql.insertDocument.run(
        `docs/${run}/${pick(DOC_TYPES)}-${n}.md`,
        title,
        pick(DOC_TYPES),
        createHash('sha256').update(`${title}\n${summary}`).digest('hex'),
        between(1, 12),
        JSON.stringify({ summary, tags: [pick(WORDS), pick(WORDS)], author: `user-${between(1, 40)}` }),
      );
    }
    if (on(FLAG_NAMES.embeddingGeneration) && milestones.vector) {
      // background sync: the oldest pending document gets its embedding
      const doc = sql.nextPending.get();
      if (doc) embedDocument(doc.id, doc.title, JSON.parse(doc.metadata).summary ?? '');
    }
  }
}

let stopping = false;
let timer;
function tick() {
  if (stopping) return;
  try {
    // the schema is read inside the write transaction: no other connection can drop a table between the two
    database()
      .transaction(() => {
        refreshSchema();
        writeOnce();
      })
      .immediate();
    stats.writes += 1;
  } catch (err) {
    stats.writeErrors += 1;
    stats.lastError = logError('write', err);
  }
  timer = setTimeout(tick, intervalMs);
}

// ---- the startup check

const integrity = { status: args['startup-check'] === 'off' ? 'off' : 'pending', ms: null, detail: null };
let checker;
function startupCheck() {
  if (integrity.status !== 'pending') return;
  const started = Date.now();
  integrity.status = 'checking';
  checker = spawn(process.execPath, [fileURLToPath(import.meta.url), '--db', dbPath, '--quick-check-only'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  checker.stdout.on('data', (b) => (out += b));
  checker.on('close', (code, signal) => {
    checker = undefined;
    if (stopping) return;
    integrity.ms = Date.now() - started;
    let result;
    try {
      result = JSON.parse(out);
    } catch {
      result = { ok: false, code: 'CHECK_FAILED', message: `quick_check process exited ${signal ?? code}` };
    }
    if (result.ok) {
      integrity.status = 'ok';
      log(`startup quick_check ok in ${integrity.ms} ms`);
      return;
    }
    integrity.status = 'failed';
    integrity.detail = result.rows ? result.rows.join('; ') : result.message;
    logError('startup-check', { code: result.code, message: `quick_check: ${integrity.detail}` });
  });
}

// ---- HTTP

function health() {
  const d = database();
  const present = new Set(
    d
      .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (${CORE_TABLES.map(() => '?')})`)
      .pluck()
      .all(...CORE_TABLES),
  );
  const missing = CORE_TABLES.filter((t) => !present.has(t));
  if (missing.length)
    throw Object.assign(new Error(`core tables missing: ${missing.join(', ')}`), { code: 'MISSING_TABLE' });
  const tasks = d.prepare('SELECT count(*) FROM tasks').pluck().get();
  refreshSchema();
  return { tasks };
}

function search(q, limit) {
  refreshSchema();
  if (!milestones.memory)
    return { mode: 'unavailable', reason: 'document_index missing (memory milestone rolled back)', results: [] };
  const semantic = on(FLAG_NAMES.semanticSearch) && milestones.vector;
  if (!semantic) {
    const like = `%${q}%`;
    return { mode: 'exact', results: sql.exactSearch.all(like, like, limit) };
  }
  const query = embed(q);
  let candidates = [];
  const terms = q.toLowerCase().match(/[a-z0-9]+/g) ?? [];
  if (milestones.fts && terms.length) {
    const ids = sql.ftsCandidates.all(terms.map((t) => `"${t}"`).join(' OR '));
    candidates = ids.flatMap((id) => sql.vectorsOf.all(id));
  }
  if (candidates.length === 0) candidates = sql.latestVectors.all(2000);
  const ranked = candidates
    .map((c) => ({ id: c.id, score: cosine(query, c.vector) }))
    .sort((a, b) => b.score - a.score)
    .slice(0, limit);
  return {
    mode: 'semantic',
    results: ranked.map((r) => ({ ...sql.documentById.get(r.id), score: Math.round(r.score * 1000) / 1000 })),
  };
}

const server = createServer((req, res) => {
  const json = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method !== 'GET') return json(405, { error: 'method not allowed' });
  if (url.pathname === '/health') {
    try {
      const { tasks } = health();
      if (corruption)
        return json(503, { status: 'unhealthy', error: `${corruption.code} ${corruption.message}`, integrity, tasks });
      return json(200, { status: 'healthy', tasks, milestones, integrity });
    } catch (err) {
      const e = logError('health', err);
      return json(503, { status: 'unhealthy', error: `${e.code} ${e.message}`, integrity });
    }
  }
  if (url.pathname === '/stats') {
    let tasks = null;
    try {
      tasks = database().prepare('SELECT count(*) FROM tasks').pluck().get();
    } catch (err) {
      logError('stats', err);
    }
    return json(200, { ...stats, tasks, milestones, flags: flagState(), integrity });
  }
  if (url.pathname === '/flags') return json(200, rawFlags);
  if (url.pathname === '/search') {
    const q = url.searchParams.get('q') ?? '';
    const limit = Math.min(Math.max(Number(url.searchParams.get('limit') ?? 10) || 10, 1), 100);
    try {
      const result = search(q, limit);
      return json(200, { query: q, ...result, count: result.results.length });
    } catch (err) {
      const e = logError('search', err);
      return json(503, { query: q, error: `${e.code} ${e.message}` });
    }
  }
  json(404, { error: 'not found' });
});

try {
  database();
} catch (err) {
  logError('open', err); // the ticks and requests retry the open
}
server.listen(port, '127.0.0.1', () => {
  log(`sqlite demo listening on 127.0.0.1:${port} db=${dbPath} flags=${JSON.stringify(flagState())}`);
  startupCheck();
  tick();
});

function stop(signal) {
  if (stopping) return;
  stopping = true;
  clearTimeout(timer);
  checker?.kill('SIGKILL');
  const finish = () => {
    try {
      db?.close(); // the last connection checkpoints the WAL and removes it
    } catch (err) {
      logError('close', err);
    }
    log(`stopped (${signal}) after ${stats.writes} writes, ${stats.writeErrors} write errors`);
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  if (checker) checker.once('close', finish);
  else finish();
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
