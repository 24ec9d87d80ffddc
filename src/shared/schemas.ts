/** Every zod schema, by concern (src/shared/schemas/); imported from here. */
export * from './schemas/primitives.js';
export * from './schemas/approval.js';
export * from './schemas/targets.js';
export * from './schemas/environment.js';
export * from './schemas/inputs.js';
export * from './schemas/adapters.js';
export * from './schemas/sqlite.js';
export * from './schemas/sqlite-inputs.js';
export * from './schemas/migration.js';
export * from './schemas/migration-inputs.js';
export * from './schemas/postgres.js';
export * from './schemas/cleanup.js';
export * from './schemas/cleanup-inputs.js';
export * from './schemas/triage.js';
