-- Demo SQLite application "abathur": the schema the SQLite rollback / disaster-recovery runbooks act on
-- (/work/shared/runbooks/sqlite-rollback-and-disaster-recovery.md). One WAL-mode database file.
--
-- This file is the initialiser: the demo service runs it whole on a file without a `tasks` table, and the "fresh
-- start" rollback re-initialises by running it. Every statement is idempotent (IF NOT EXISTS).
--
-- Three milestones, each starting at a `-- @milestone <name>` line (src/demo/sqlite-app/schema.ts reads them):
--   core   (milestone 1):   6 tables, 19 indexes, 1 trigger
--   memory (milestone 2):   3 tables, 16 indexes, 2 triggers   (exactly the 16 indexes named in spec §2.2)
--   vector (milestone 3):   2 plain tables + 1 FTS5 virtual table, 4 indexes, 1 trigger
--
-- What sqlite_master reports after running this file (better-sqlite3 12.6.2, SQLite 3.51.2, FTS5 compiled in):
--   core + memory:     type='table' 9,  type='index' 35, type='trigger' 3
--   all milestones:    type='table' 17, type='index' 39, type='trigger' 4
--     (17 = 9 + document_embeddings + document_embeddings_data + document_search + its 5 FTS5 shadow tables
--      document_search_data, _idx, _content, _docsize, _config; dropping document_search drops them too)
-- No UNIQUE/PRIMARY KEY constraint makes an automatic index: every primary key is an INTEGER rowid alias and every
-- uniqueness is a named CREATE UNIQUE INDEX, so the index count is exactly the named indexes below. No
-- AUTOINCREMENT either (it would add the sqlite_sequence table to the table count).
--
-- Foreign keys point from later milestones to earlier ones only (memory -> core, vector -> memory), so dropping a
-- milestone's tables never orphans an earlier one. With foreign_keys=ON, DROP TABLE document_index (milestone 2
-- rollback) fails while document_embeddings still holds rows pointing at it: roll back milestone 3 first.
-- document_embeddings_data is keyed like sqlite-vss's shadow table (embedding_id = document_embeddings.id) without
-- a declared foreign key, so the spec's drop order (document_embeddings, then document_embeddings_data) works.

-- @milestone core

CREATE TABLE IF NOT EXISTS agents (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  specialization TEXT NOT NULL,
  model TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'idle' CHECK (state IN ('spawning', 'idle', 'busy', 'terminating', 'terminated')),
  config TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  terminated_at TEXT
);

CREATE TABLE IF NOT EXISTS tasks (
  id INTEGER PRIMARY KEY,
  agent_id INTEGER REFERENCES agents (id),
  parent_task_id INTEGER REFERENCES tasks (id),
  session_id TEXT,
  template_name TEXT NOT NULL,
  prompt TEXT NOT NULL,
  input_data TEXT NOT NULL DEFAULT '{}',
  result_data TEXT,
  error_message TEXT,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
  priority INTEGER NOT NULL DEFAULT 5 CHECK (priority BETWEEN 0 AND 10),
  retry_count INTEGER NOT NULL DEFAULT 0,
  max_retries INTEGER NOT NULL DEFAULT 3,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  started_at TEXT,
  completed_at TEXT
);

CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY,
  timestamp TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  agent_id INTEGER REFERENCES agents (id),
  task_id INTEGER REFERENCES tasks (id),
  action_type TEXT NOT NULL,
  action_data TEXT NOT NULL DEFAULT '{}',
  result TEXT
);

CREATE TABLE IF NOT EXISTS checkpoints (
  id INTEGER PRIMARY KEY,
  task_id INTEGER NOT NULL REFERENCES tasks (id),
  iteration INTEGER NOT NULL,
  state TEXT NOT NULL,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS state (
  id INTEGER PRIMARY KEY,
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  task_id INTEGER REFERENCES tasks (id),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS metrics (
  id INTEGER PRIMARY KEY,
  metric_name TEXT NOT NULL,
  metric_value REAL NOT NULL,
  labels TEXT NOT NULL DEFAULT '{}',
  timestamp TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE UNIQUE INDEX IF NOT EXISTS idx_agents_name ON agents (name);
CREATE INDEX IF NOT EXISTS idx_agents_state ON agents (state);
CREATE INDEX IF NOT EXISTS idx_agents_specialization ON agents (specialization);

CREATE INDEX IF NOT EXISTS idx_tasks_status_priority ON tasks (status, priority DESC, created_at);
CREATE INDEX IF NOT EXISTS idx_tasks_agent_id ON tasks (agent_id);
CREATE INDEX IF NOT EXISTS idx_tasks_parent_task_id ON tasks (parent_task_id) WHERE parent_task_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_tasks_session_id ON tasks (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_tasks_template_name ON tasks (template_name);
CREATE INDEX IF NOT EXISTS idx_tasks_created_at ON tasks (created_at);

CREATE INDEX IF NOT EXISTS idx_audit_task_id ON audit (task_id, timestamp);
CREATE INDEX IF NOT EXISTS idx_audit_agent_id ON audit (agent_id, timestamp);
CREATE INDEX IF NOT EXISTS idx_audit_action_type ON audit (action_type);
CREATE INDEX IF NOT EXISTS idx_audit_timestamp ON audit (timestamp);

CREATE UNIQUE INDEX IF NOT EXISTS idx_checkpoints_task_iteration ON checkpoints (task_id, iteration);
CREATE INDEX IF NOT EXISTS idx_checkpoints_created_at ON checkpoints (created_at);

CREATE UNIQUE INDEX IF NOT EXISTS idx_state_scope_key ON state (scope, key);
CREATE INDEX IF NOT EXISTS idx_state_task_id ON state (task_id) WHERE task_id IS NOT NULL;

CREATE INDEX IF NOT EXISTS idx_metrics_name_timestamp ON metrics (metric_name, timestamp);
CREATE INDEX IF NOT EXISTS idx_metrics_timestamp ON metrics (timestamp);

-- a task reaching a final status gets its completion time
CREATE TRIGGER IF NOT EXISTS trg_tasks_completed_at
AFTER UPDATE OF status ON tasks
WHEN NEW.status IN ('completed', 'failed', 'cancelled') AND NEW.completed_at IS NULL
BEGIN
  UPDATE tasks SET completed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id;
END;

-- @milestone memory

CREATE TABLE IF NOT EXISTS sessions (
  id INTEGER PRIMARY KEY,
  session_key TEXT NOT NULL,
  app_name TEXT NOT NULL,
  user_id TEXT NOT NULL,
  project_id TEXT,
  agent_id INTEGER REFERENCES agents (id),
  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('created', 'active', 'paused', 'terminated', 'archived')),
  events TEXT NOT NULL DEFAULT '[]',
  state TEXT NOT NULL DEFAULT '{}',
  metadata TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  terminated_at TEXT
);

CREATE TABLE IF NOT EXISTS memory_entries (
  id INTEGER PRIMARY KEY,
  namespace TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  memory_type TEXT NOT NULL CHECK (memory_type IN ('semantic', 'episodic', 'procedural')),
  version INTEGER NOT NULL DEFAULT 1,
  is_deleted INTEGER NOT NULL DEFAULT 0 CHECK (is_deleted IN (0, 1)),
  session_id INTEGER,
  task_id INTEGER REFERENCES tasks (id),
  metadata TEXT NOT NULL DEFAULT '{}',
  created_by TEXT NOT NULL,
  updated_by TEXT NOT NULL,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS document_index (
  id INTEGER PRIMARY KEY,
  file_path TEXT NOT NULL,
  title TEXT NOT NULL,
  document_type TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  chunk_count INTEGER NOT NULL DEFAULT 1,
  metadata TEXT NOT NULL DEFAULT '{}',
  embedding_model TEXT,
  embedding_blob BLOB,
  sync_status TEXT NOT NULL DEFAULT 'pending' CHECK (sync_status IN ('pending', 'processing', 'synced', 'failed', 'stale')),
  last_synced_at TEXT,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX IF NOT EXISTS idx_sessions_status_updated ON sessions (status, updated_at DESC);
CREATE INDEX IF NOT EXISTS idx_sessions_user_created ON sessions (user_id, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_sessions_project_id ON sessions (project_id) WHERE project_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS idx_sessions_app_user ON sessions (app_name, user_id, session_key);

CREATE UNIQUE INDEX IF NOT EXISTS idx_memory_namespace_key_version ON memory_entries (namespace, key, version);
CREATE INDEX IF NOT EXISTS idx_memory_type_updated ON memory_entries (memory_type, updated_at DESC);
CREATE INDEX IF NOT EXISTS idx_memory_namespace_prefix ON memory_entries (namespace COLLATE NOCASE);
CREATE INDEX IF NOT EXISTS idx_memory_created_by ON memory_entries (created_by);
CREATE INDEX IF NOT EXISTS idx_memory_updated_at ON memory_entries (updated_at DESC);
CREATE INDEX IF NOT EXISTS idx_memory_type_namespace ON memory_entries (memory_type, namespace);
CREATE INDEX IF NOT EXISTS idx_memory_is_deleted ON memory_entries (is_deleted) WHERE is_deleted = 1;

CREATE UNIQUE INDEX IF NOT EXISTS idx_document_file_path ON document_index (file_path);
CREATE INDEX IF NOT EXISTS idx_document_type ON document_index (document_type);
CREATE INDEX IF NOT EXISTS idx_document_sync_status ON document_index (sync_status, updated_at);
CREATE INDEX IF NOT EXISTS idx_document_hash ON document_index (content_hash);
CREATE INDEX IF NOT EXISTS idx_document_updated ON document_index (updated_at DESC);

-- changing a memory value bumps updated_at (fires on UPDATE OF value only, so its own update does not re-fire it)
CREATE TRIGGER IF NOT EXISTS trg_memory_updated_at
AFTER UPDATE OF value ON memory_entries
BEGIN
  UPDATE memory_entries SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id;
END;

-- a memory written in a session marks the session as recently active
CREATE TRIGGER IF NOT EXISTS trg_sessions_touch
AFTER INSERT ON memory_entries
WHEN NEW.session_id IS NOT NULL
BEGIN
  UPDATE sessions SET updated_at = NEW.created_at WHERE id = NEW.session_id;
END;

-- @milestone vector
-- document_embeddings and document_embeddings_data stand in for the sqlite-vss virtual table and its shadow table
-- (the extension is not available here); document_search is a real FTS5 virtual table (rowid = document_index.id).

CREATE TABLE IF NOT EXISTS document_embeddings (
  id INTEGER PRIMARY KEY,
  document_id INTEGER NOT NULL REFERENCES document_index (id),
  chunk_index INTEGER NOT NULL DEFAULT 0,
  model TEXT NOT NULL,
  dimensions INTEGER NOT NULL,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS document_embeddings_data (
  id INTEGER PRIMARY KEY,
  embedding_id INTEGER NOT NULL,
  vector BLOB NOT NULL
);

CREATE VIRTUAL TABLE IF NOT EXISTS document_search USING fts5 (title, body, tokenize = 'porter unicode61');

CREATE UNIQUE INDEX IF NOT EXISTS idx_embeddings_document_chunk ON document_embeddings (document_id, chunk_index);
CREATE INDEX IF NOT EXISTS idx_embeddings_model ON document_embeddings (model);
CREATE INDEX IF NOT EXISTS idx_embeddings_created_at ON document_embeddings (created_at);
CREATE UNIQUE INDEX IF NOT EXISTS idx_embeddings_data_embedding_id ON document_embeddings_data (embedding_id);

-- an embedded document counts as synced
CREATE TRIGGER IF NOT EXISTS trg_embeddings_mark_synced
AFTER INSERT ON document_embeddings
BEGIN
  UPDATE document_index
  SET sync_status = 'synced', embedding_model = NEW.model, last_synced_at = NEW.created_at
  WHERE id = NEW.document_id;
END;
