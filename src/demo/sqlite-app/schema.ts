/**
 * The demo SQLite application's schema (schema.sql beside this file): where it is, its milestones, and the names
 * of the tables, indexes and triggers each milestone creates. The name lists are written out (so a runbook
 * manifest can be checked against them); test/sqlite-demo-app.test.ts checks they match sqlite_master.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Absolute path of schema.sql: the initialiser the service and the "fresh start" rollback run. */
export const SCHEMA_SQL_PATH = join(dirname(fileURLToPath(import.meta.url)), 'schema.sql');

export const MILESTONES = ['core', 'memory', 'vector'] as const;
export type Milestone = (typeof MILESTONES)[number];
/** the milestones after core, which can be left out of a seed or rolled back */
export type OptionalMilestone = Exclude<Milestone, 'core'>;

export interface MilestoneObjects {
  /** tables the milestone creates, virtual tables included (not the FTS5 shadow tables) */
  tables: readonly string[];
  /** virtual tables among `tables` */
  virtualTables: readonly string[];
  /** tables SQLite creates for the virtual tables; they go when their virtual table is dropped */
  shadowTables: readonly string[];
  indexes: readonly string[];
  triggers: readonly string[];
}

export const SCHEMA: Record<Milestone, MilestoneObjects> = {
  core: {
    tables: ['agents', 'tasks', 'audit', 'checkpoints', 'state', 'metrics'],
    virtualTables: [],
    shadowTables: [],
    indexes: [
      'idx_agents_name',
      'idx_agents_state',
      'idx_agents_specialization',
      'idx_tasks_status_priority',
      'idx_tasks_agent_id',
      'idx_tasks_parent_task_id',
      'idx_tasks_session_id',
      'idx_tasks_template_name',
      'idx_tasks_created_at',
      'idx_audit_task_id',
      'idx_audit_agent_id',
      'idx_audit_action_type',
      'idx_audit_timestamp',
      'idx_checkpoints_task_iteration',
      'idx_checkpoints_created_at',
      'idx_state_scope_key',
      'idx_state_task_id',
      'idx_metrics_name_timestamp',
      'idx_metrics_timestamp',
    ],
    triggers: ['trg_tasks_completed_at'],
  },
  memory: {
    tables: ['sessions', 'memory_entries', 'document_index'],
    virtualTables: [],
    shadowTables: [],
    // exactly the 16 indexes the spec's milestone-2 rollback drops (§2.2), in its order
    indexes: [
      'idx_sessions_status_updated',
      'idx_sessions_user_created',
      'idx_sessions_project_id',
      'idx_sessions_app_user',
      'idx_memory_namespace_key_version',
      'idx_memory_type_updated',
      'idx_memory_namespace_prefix',
      'idx_memory_created_by',
      'idx_memory_updated_at',
      'idx_memory_type_namespace',
      'idx_memory_is_deleted',
      'idx_document_file_path',
      'idx_document_type',
      'idx_document_sync_status',
      'idx_document_hash',
      'idx_document_updated',
    ],
    triggers: ['trg_memory_updated_at', 'trg_sessions_touch'],
  },
  vector: {
    tables: ['document_embeddings', 'document_embeddings_data', 'document_search'],
    virtualTables: ['document_search'],
    shadowTables: [
      'document_search_data',
      'document_search_idx',
      'document_search_content',
      'document_search_docsize',
      'document_search_config',
    ],
    indexes: [
      'idx_embeddings_document_chunk',
      'idx_embeddings_model',
      'idx_embeddings_created_at',
      'idx_embeddings_data_embedding_id',
    ],
    triggers: ['trg_embeddings_mark_synced'],
  },
};

/** What `SELECT type, count(*) FROM sqlite_master GROUP BY type` reports for core+memory and for all milestones. */
export const SQLITE_MASTER_COUNTS = {
  coreAndMemory: { table: 9, index: 35, trigger: 3 },
  all: { table: 17, index: 39, trigger: 4 },
} as const;

const MARKER = /^-- @milestone (\w+)\s*$/gm;

/** schema.sql cut at its `-- @milestone <name>` lines (the header before the first marker is left out). */
export function schemaSections(sql = readFileSync(SCHEMA_SQL_PATH, 'utf8')): Record<Milestone, string> {
  const marks = [...sql.matchAll(MARKER)].map((m) => ({ name: m[1] as string, at: m.index }));
  const names = marks.map((m) => m.name);
  if (names.join(',') !== MILESTONES.join(','))
    throw new Error(`schema.sql: expected milestone markers ${MILESTONES.join(', ')}, found ${names.join(', ')}`);
  const sections = {} as Record<Milestone, string>;
  marks.forEach((m, i) => {
    sections[m.name as Milestone] = sql.slice(m.at, marks[i + 1]?.at ?? sql.length);
  });
  return sections;
}

/** The SQL creating core plus the given milestones (all of them by default), in milestone order. */
export function schemaSqlFor(milestones: readonly OptionalMilestone[] = ['memory', 'vector']): string {
  if (milestones.includes('vector') && !milestones.includes('memory'))
    throw new Error('the vector milestone needs the memory milestone (document_embeddings references document_index)');
  const sections = schemaSections();
  return MILESTONES.filter((m) => m === 'core' || milestones.includes(m))
    .map((m) => sections[m])
    .join('\n');
}
