import type { z } from 'zod';
import {
  backendPhaseSwitchInputSchema,
  dualWriteRollbackInputSchema,
  dualWriteCheckInputSchema,
  emergencyLadderInputSchema,
  featureFlagRollbackInputSchema,
  sqliteBackupInputSchema,
  sqliteMilestoneRollbackInputSchema,
  sqliteRecoveryInputSchema,
  sqliteDrillInputSchema,
  sqliteFreshStartInputSchema,
  sqliteRestoreInputSchema,
  postgresBackupInputSchema,
  postgresRestoreInputSchema,
  outputRecoveryInputSchema,
  testDataCleanupInputSchema,
  jobReplayInputSchema,
  triageInputSchema,
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
  /** runbooks that make sense unattended: `runbook schedule create <name>` turns them into Temporal Schedules */
  schedule?: RunbookSchedule;
  /** the section of `targets.<t>` the runbook acts on: `runbook start|schedule create` refuse a target without it */
  requiresSection?: 'dualWrite' | 'sqlite' | 'migration' | 'flags';
}

export interface RunbookSchedule {
  /** when `runbook schedule create` is given no --cron (5 fields: minute hour day-of-month month day-of-week) */
  defaultCron: string;
  /** what the schedule is for (its memo and note say so) */
  description: string;
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
  'dual-write-check': {
    workflowType: 'dualWriteCheck',
    description:
      'Detection only: compare the two stores of a dual-write pair incrementally, set the gauge, alert by severity',
    schema: dualWriteCheckInputSchema,
    schedule: { defaultCron: '*/15 * * * *', description: 'dual-write consistency check (detection only)' },
    requiresSection: 'dualWrite',
  },
  'sqlite-backup': {
    workflowType: 'sqliteBackup',
    description: 'Online backup of a SQLite database: checkpoint, copy, gzip, verify, signed manifest, retention',
    schema: sqliteBackupInputSchema,
    schedule: { defaultCron: '0 2 * * *', description: 'daily SQLite backup (seed §3.1)' },
  },
  'sqlite-drill': {
    workflowType: 'sqliteDrill',
    description: 'Rollback drill: restore the newest verified backup into a sandbox, validate (§5.2), measure',
    schema: sqliteDrillInputSchema,
    schedule: { defaultCron: '0 3 1 1,4,7,10 *', description: 'quarterly rollback drill (seed §5.1)' },
  },
  'sqlite-milestone-rollback': {
    workflowType: 'sqliteMilestoneRollback',
    description: 'Roll back one SQLite milestone by its manifest: backup, drop in one transaction, verify, flags off',
    schema: sqliteMilestoneRollbackInputSchema,
  },
  'sqlite-recovery': {
    workflowType: 'sqliteRecovery',
    description: 'SQLite disaster recovery: corruption (.recover or backup), WAL corruption, disk space exhaustion',
    schema: sqliteRecoveryInputSchema,
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
  'output-recovery': {
    workflowType: 'outputRecovery',
    description:
      'Detect corrupt job outputs, quarantine them, restore verified backup copies, replay the rest (child job-replay)',
    schema: outputRecoveryInputSchema,
  },
  'emergency-ladder': {
    workflowType: 'emergencyLadder',
    description: 'L1 restart → L2 last known good → L3 emergency configuration → escalate; stops when healthy',
    schema: emergencyLadderInputSchema,
  },
  'job-replay': {
    workflowType: 'jobReplay',
    description:
      'Detect failed, stuck, incomplete and log-gap jobs; requeue them exactly once, paced, optional backend override',
    schema: jobReplayInputSchema,
  },
  'backend-phase-switch': {
    workflowType: 'backendPhaseSwitch',
    description:
      'Move a job processor between backend phases (soak after each forward step, automatic rollback) or back to a checkpoint',
    schema: backendPhaseSwitchInputSchema,
  },
  'postgres-backup': {
    workflowType: 'postgresBackup',
    description: 'pg_dump (custom format) of a Postgres database with a signed manifest (digest, size, row counts)',
    schema: postgresBackupInputSchema,
    schedule: { defaultCron: '30 2 * * *', description: 'daily Postgres backup (seed scenario 4)' },
  },
  'postgres-restore': {
    workflowType: 'postgresRestore',
    description:
      'Restore a Postgres database from its newest verified backup into a new database, swap it in by rename (old one kept)',
    schema: postgresRestoreInputSchema,
  },
  'test-data-cleanup': {
    workflowType: 'testDataCleanup',
    description:
      'Delete the test data an environment describes (tables, predicates, relations) in one verified transaction',
    schema: testDataCleanupInputSchema,
  },
  triage: {
    workflowType: 'triage',
    description:
      "Measure and take the symptoms, propose the decision matrix's chain of runbooks, run it as children after one approval",
    schema: triageInputSchema,
  },
};

/** One runbook per target at a time: the default workflow id names all three. */
export const defaultWorkflowId = (runbook: string, environment: string, target: string): string =>
  `${runbook}--${environment}--${target}`;
