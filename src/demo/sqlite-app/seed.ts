/**
 * Fills a new demo SQLite database (schema.sql, core plus the chosen milestones) with realistic rows until the file
 * reaches a target size: for tests (tens of MB) and benchmarks (1 GB).
 *
 * Fast path: journal_mode=OFF, synchronous=OFF, an exclusive lock and a large cache while loading; the indexes and
 * triggers are dropped before the load and created again from their own SQL (sqlite_master) afterwards, which
 * builds each index by one sort instead of row-by-row inserts. The load stops at an estimate of the data's share
 * of the target; what is left is added with the indexes in place. The file ends in WAL mode, checkpointed and closed
 * (no -wal file left). The rows are consistent: `PRAGMA foreign_key_check` is empty, every unique index holds.
 */
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { SCHEMA, schemaSqlFor, type OptionalMilestone } from './schema.js';
import { WORDS } from './words.mjs';

export interface SeedOptions {
  targetBytes: number;
  /** milestones besides core (default: memory and vector) */
  milestones?: OptionalMilestone[];
  /** rows per transaction, roughly (default 10,000) */
  batchRows?: number;
  /** called after each transaction with the file's size so far */
  onProgress?: (bytes: number) => void;
}

export interface SeedResult {
  /** size of the database file at the end */
  bytes: number;
  /** rows written per table (document_search: FTS5 rows) */
  rows: Record<string, number>;
}

/** the rows' share of the file: loading stops there and builds the indexes (measured: they are 17-19% of a seed) */
const DATA_SHARE = 0.8;
const EMBEDDING_MODEL = 'all-minilm:l6-v2';
const DIMENSIONS = 384;
const DAY_MS = 86_400_000;

const TEMPLATES = ['code-review', 'schema-migration', 'doc-summary', 'test-triage', 'incident-digest', 'refactor'];
const SPECIALIZATIONS = ['planner', 'reviewer', 'implementer', 'researcher', 'tester'];
const ACTIONS = ['task_started', 'tool_call', 'memory_write', 'llm_request', 'task_completed', 'checkpoint_saved'];
const TOOLS = ['grep', 'edit', 'bash', 'read'];
const METRICS = ['task_duration_ms', 'tokens_used', 'queue_depth', 'llm_latency_ms', 'memory_bytes'];
const DOC_TYPES = ['markdown', 'design', 'runbook', 'adr', 'api-reference'];
const MEMORY_TYPES = ['semantic', 'episodic', 'procedural'];
const SESSION_STATUSES = ['active', 'paused', 'terminated', 'archived', 'archived', 'terminated'];

/** A small deterministic generator (mulberry32), so a seed is the same every time. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The service's stand-in embedding (service.mjs `embed`): hashed word features, normalised, float32. */
export function embed(input: string): Buffer {
  const v = new Float32Array(DIMENSIONS);
  for (const word of input.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
    let h = 2166136261;
    for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 16777619);
    h >>>= 0;
    v[h % DIMENSIONS]! += h & 0x10000 ? 1 : -1;
  }
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < v.length; i++) v[i]! /= norm;
  return Buffer.from(v.buffer);
}

/** Sentences of the demo vocabulary; text is cut from one long corpus at random places (cheap, still words). */
function textSource(rand: () => number) {
  const sentences: string[] = [];
  let size = 0;
  while (size < 1 << 20) {
    const n = 6 + Math.floor(rand() * 11);
    const words = Array.from({ length: n }, () => WORDS[Math.floor(rand() * WORDS.length)]!);
    const s = `${words[0]![0]!.toUpperCase()}${words.join(' ').slice(1)}. `;
    sentences.push(s);
    size += s.length;
  }
  const corpus = sentences.join('');
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const text = (lo: number, hi: number) => {
    const len = int(lo, hi);
    let at = Math.floor(rand() * (corpus.length - len));
    at = corpus.indexOf(' ', at) + 1; // start on a word
    return corpus.slice(at, at + len).trimEnd();
  };
  return { pick, int, text };
}

export async function seedSqliteDatabase(path: string, opts: SeedOptions): Promise<SeedResult> {
  const milestones = opts.milestones ?? ['memory', 'vector'];
  const memory = milestones.includes('memory');
  const vector = milestones.includes('vector');
  const schema = schemaSqlFor(milestones);
  const batchRows = opts.batchRows ?? 10_000;
  if (existsSync(path)) throw new Error(`${path} exists; the seed writes a new database only`);
  mkdirSync(dirname(path), { recursive: true });

  const db = new Database(path);
  try {
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('cache_size = -262144'); // 256 MiB
    db.pragma('temp_store = MEMORY');
    db.pragma('foreign_keys = OFF'); // the rows are consistent by construction; checked by the tests
    db.exec(schema);
    const deferred = db
      .prepare("SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') AND sql IS NOT NULL")
      .all() as Array<{ type: 'index' | 'trigger'; name: string; sql: string }>;
    for (const o of deferred) db.exec(`DROP ${o.type.toUpperCase()} "${o.name}"`);

    const rand = random(0x5eed);
    const { pick, int, text } = textSource(rand);
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const fileBytes = () => (db.pragma('page_count', { simple: true }) as number) * pageSize;
    const base = Date.now() - 30 * DAY_MS;
    /** timestamps rise with the row number: `perDay` rows a day, starting 30 days ago */
    const at = (i: number, perDay: number) =>
      new Date(base + Math.min(30 * DAY_MS, (i / perDay) * DAY_MS) + (i % 997)).toISOString();

    const n = {
      agents: 0,
      tasks: 0,
      audit: 0,
      checkpoints: 0,
      state: 0,
      metrics: 0,
      sessions: 0,
      memory_entries: 0,
      document_index: 0,
      document_embeddings: 0,
      document_embeddings_data: 0,
      document_search: 0,
    };
    const insert = (table: string, columns: string) =>
      db.prepare(`INSERT INTO ${table} (${columns}) VALUES (${columns.split(',').map(() => '?')})`);
    const core = {
      agent: insert('agents', 'id,name,specialization,model,state,config,created_at,terminated_at'),
      task: insert(
        'tasks',
        'id,agent_id,parent_task_id,session_id,template_name,prompt,input_data,result_data,error_message,status,' +
          'priority,retry_count,created_at,started_at,completed_at',
      ),
      audit: insert('audit', 'id,timestamp,agent_id,task_id,action_type,action_data,result'),
      checkpoint: insert('checkpoints', 'id,task_id,iteration,state,created_at'),
      state: insert('state', 'id,scope,key,value,task_id,updated_at'),
      metric: insert('metrics', 'id,metric_name,metric_value,labels,timestamp'),
    };
    const mem = memory
      ? {
          session: insert(
            'sessions',
            'id,session_key,app_name,user_id,project_id,agent_id,status,events,state,metadata,created_at,' +
              'updated_at,terminated_at',
          ),
          memory: insert(
            'memory_entries',
            'id,namespace,key,value,memory_type,version,is_deleted,session_id,task_id,metadata,created_by,' +
              'updated_by,created_at,updated_at',
          ),
          document: insert(
            'document_index',
            'id,file_path,title,document_type,content_hash,chunk_count,metadata,embedding_model,embedding_blob,' +
              'sync_status,last_synced_at,created_at,updated_at',
          ),
        }
      : undefined;
    const vec = vector
      ? {
          embedding: insert('document_embeddings', 'id,document_id,chunk_index,model,dimensions,created_at'),
          data: insert('document_embeddings_data', 'id,embedding_id,vector'),
          search: insert('document_search', 'rowid,title,body'),
        }
      : undefined;

    // One unit: 1 task with its audit trail, metrics and (every few) checkpoints and state; with memory a memory
    // entry or two, a session every 25 tasks and a document every 4; with vector most documents embedded.
    const TASKS_PER_DAY = 20_000;
    let sessionId = 0;
    const unit = () => {
      if (n.agents === 0 || n.tasks % 500 === 0) {
        const id = ++n.agents;
        core.agent.run(
          id,
          `agent-${String(id).padStart(6, '0')}`,
          pick(SPECIALIZATIONS),
          pick(['claude-sonnet', 'claude-haiku', 'claude-opus']),
          pick(['idle', 'busy', 'terminated']),
          `{"temperature":0.2,"max_tokens":4096,"tools":["read","write","search"],"prompt":"${text(60, 160)}"}`,
          at(n.tasks, TASKS_PER_DAY),
          null,
        );
      }
      const taskId = ++n.tasks;
      const agentId = n.agents;
      const created = at(taskId, TASKS_PER_DAY);
      if (mem && (sessionId === 0 || taskId % 25 === 0)) {
        sessionId = ++n.sessions;
        const status = pick(SESSION_STATUSES);
        mem.session.run(
          sessionId,
          `session-${sessionId}`,
          'abathur',
          `user-${int(1, 400)}`,
          rand() < 0.8 ? `project-${int(1, 60)}` : null,
          agentId,
          status,
          `[{"type":"user_message","text":"${text(80, 200)}"},{"type":"tool_call","text":"${text(60, 160)}"}]`,
          `{"cwd":"/srv/abathur","step":${int(1, 40)},"notes":"${text(40, 120)}"}`,
          `{"client":"cli","note":"${text(40, 100)}"}`,
          created,
          created,
          status === 'terminated' || status === 'archived' ? created : null,
        );
      }
      const failed = rand() < 0.05;
      const done = taskId % 50 !== 0;
      core.task.run(
        taskId,
        agentId,
        taskId > 1 && taskId % 7 === 0 ? taskId - int(1, Math.min(taskId - 1, 50)) : null,
        memory ? `session-${sessionId}` : null,
        pick(TEMPLATES),
        text(250, 500),
        `{"repo":"repo-${int(1, 30)}","ref":"refs/heads/feature-${taskId}","notes":"${text(40, 100)}"}`,
        done && !failed ? `{"summary":"${text(150, 300)}","tokens":${int(500, 9000)}}` : null,
        done && failed ? `timeout after ${int(30, 300)}s: ${text(40, 80)}` : null,
        done ? (failed ? 'failed' : 'completed') : 'running',
        int(0, 10),
        failed ? int(1, 3) : 0,
        created,
        created,
        done ? created : null,
      );
      for (let k = 0; k < 2; k++)
        core.audit.run(
          ++n.audit,
          created,
          agentId,
          taskId,
          pick(ACTIONS),
          `{"tool":"${pick(TOOLS)}","detail":"${text(100, 220)}"}`,
          'ok',
        );
      if (taskId % 3 === 0)
        core.checkpoint.run(++n.checkpoints, taskId, 1, `{"step":1,"scratch":"${text(150, 250)}"}`, created);
      if (taskId % 4 === 0)
        core.state.run(
          ++n.state,
          `task:${taskId}`,
          'progress',
          `{"done":1,"notes":"${text(40, 100)}"}`,
          taskId,
          created,
        );
      core.metric.run(++n.metrics, pick(METRICS), int(0, 100_000) / 10, `{"agent":"agent-${agentId}"}`, created);
      if (!mem) return;
      for (let k = taskId % 2; k < 2; k++) {
        const id = ++n.memory_entries;
        mem.memory.run(
          id,
          `project:${int(1, 60)}:agent:${agentId}`,
          `${pick(WORDS)}-${id}`,
          text(200, 450),
          pick(MEMORY_TYPES),
          1,
          id % 50 === 0 ? 1 : 0,
          sessionId,
          taskId,
          `{"source":"agent","confidence":${int(0, 100) / 100}}`,
          `agent-${agentId}`,
          `agent-${agentId}`,
          created,
          created,
        );
      }
      if (taskId % 4 !== 0) return;
      const docId = ++n.document_index;
      const type = pick(DOC_TYPES);
      const title = `${pick(WORDS)} ${pick(WORDS)} ${pick(WORDS)} guide ${docId}`;
      const summary = text(150, 300);
      const synced = vec !== undefined && docId % 10 !== 0;
      const chunks = int(1, 3);
      const vector0 = synced ? embed(`${title} ${summary}`) : null;
      mem.document.run(
        docId,
        `docs/${type}/${docId}.md`,
        title,
        type,
        createHash('sha256').update(`${title}\n${summary}`).digest('hex'),
        chunks,
        `{"summary":"${summary}","tags":["${pick(WORDS)}","${pick(WORDS)}"],"author":"user-${int(1, 400)}"}`,
        synced ? EMBEDDING_MODEL : null,
        vector0,
        synced ? 'synced' : 'pending',
        synced ? created : null,
        created,
        created,
      );
      if (!vec || !vector0) return;
      for (let c = 0; c < chunks; c++) {
        const embeddingId = ++n.document_embeddings;
        vec.embedding.run(embeddingId, docId, c, EMBEDDING_MODEL, DIMENSIONS, created);
        vec.data.run(++n.document_embeddings_data, embeddingId, c === 0 ? vector0 : embed(text(200, 400)));
      }
      vec.search.run(docId, title, summary);
      n.document_search += 1;
    };
    /** rows one unit writes, on average (for batches of about batchRows rows) */
    const rowsPerUnit = 5.6 + (memory ? 1.8 : 0) + (vector ? 0.65 : 0);
    const unitsPerBatch = Math.max(1, Math.round(batchRows / rowsPerUnit));
    const batch = db.transaction((units: number) => {
      for (let i = 0; i < units; i++) unit();
    });
    /** adds batches until the file has `bytes`; near the end the batches shrink to what is missing (no big overshoot) */
    let bytesPerUnit = 0;
    const loadUntil = async (bytes: number) => {
      for (let size = fileBytes(); size < bytes;) {
        const units = bytesPerUnit
          ? Math.max(1, Math.min(unitsPerBatch, Math.ceil((bytes - size) / bytesPerUnit)))
          : unitsPerBatch;
        batch(units);
        const next = fileBytes();
        if (next > size) bytesPerUnit = (next - size) / units;
        size = next;
        opts.onProgress?.(size);
        await new Promise((resolve) => setImmediate(resolve));
      }
    };

    await loadUntil(opts.targetBytes * DATA_SHARE);
    for (const o of deferred.filter((d) => d.type === 'index')) db.exec(o.sql);
    opts.onProgress?.(fileBytes());
    await loadUntil(opts.targetBytes);
    for (const o of deferred.filter((d) => d.type === 'trigger')) db.exec(o.sql);

    db.pragma('locking_mode = NORMAL');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.close();
    const tables = [
      ...SCHEMA.core.tables,
      ...(memory ? SCHEMA.memory.tables : []),
      ...(vector ? SCHEMA.vector.tables : []),
    ];
    return { bytes: statSync(path).size, rows: Object.fromEntries(tables.map((t) => [t, n[t as keyof typeof n]])) };
  } catch (err) {
    if (db.open) db.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true }); // no half-seeded file
    throw err;
  }
}
