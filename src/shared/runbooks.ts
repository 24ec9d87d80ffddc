import type { z } from 'zod';
import {
  dualWriteRollbackInputSchema,
  featureFlagRollbackInputSchema,
  sqliteBackupInputSchema,
  sqliteFreshStartInputSchema,
  sqliteRestoreInputSchema,
} from './schemas.js';

/** What every runbook's input has (baseInput in schemas.ts). */
export interface RunbookInputBase {
  environment: string;
  target: string;
  requester: string;
  dryRun: boolean;
  approval?: { quorum?: number; timeout?: string };
  lockWait?: string;
}

export interface RunbookDefinition {
  /** the workflow type (exported function name) operators pass to `temporal workflow start --type` */
  workflowType: string;
  description: string;
  schema: z.ZodType<RunbookInputBase>;
}

/** Every runbook the CLI can start, by the name used in `runbook start <name>`. */
export const RUNBOOKS: Record<string, RunbookDefinition> = {
  'feature-flag-rollback': {
    workflowType: 'featureFlagRollback',
    description: 'Disable dual-write / strict mode or block legacy writes through flags, reload, verify, notify',
    schema: featureFlagRollbackInputSchema,
  },
  'dual-write-rollback': {
    workflowType: 'dualWriteRollback',
    description: 'Detect, isolate, decide, snapshot, repair and verify drift between two dual-written stores',
    schema: dualWriteRollbackInputSchema,
  },
  'sqlite-backup': {
    workflowType: 'sqliteBackup',
    description: 'Online backup of a SQLite database: checkpoint, copy, gzip, verify, signed manifest, retention',
    schema: sqliteBackupInputSchema,
  },
  'sqlite-restore': {
    workflowType: 'sqliteRestore',
    description: 'Restore a SQLite database from its newest verified backup (emergency rollback), forensic copy first',
    schema: sqliteRestoreInputSchema,
  },
  'sqlite-fresh-start': {
    workflowType: 'sqliteFreshStart',
    description: 'Delete a failed SQLite database (forensic copy kept) and initialise it again from its schema',
    schema: sqliteFreshStartInputSchema,
  },
};

/** One runbook per target at a time: the default workflow id names all three. */
export const defaultWorkflowId = (runbook: string, environment: string, target: string): string =>
  `${runbook}--${environment}--${target}`;
