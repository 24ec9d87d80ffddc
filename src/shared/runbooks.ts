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
  /**
   * Why a parent run's approval never covers this runbook as a child (triage): its plan — computed when it runs
   * (the rows it deletes, the backup it restores, the objects it overwrites) — is the decision, so it waits for its
   * own approval of that plan (the engine refuses a parent's cover, src/workflows/engine/plan-gates.ts). Absent:
   * a parent's approved plan may cover its exact input (feature-flag-rollback, job-replay), or it has no gate.
   */
  ownApproval?: string;
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
    ownApproval: 'its plan is the set of objects it overwrites or deletes in one store, detected when it runs',
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
    ownApproval: "it drops the milestone's tables and every row in them",
  },
  'sqlite-recovery': {
    workflowType: 'sqliteRecovery',
    description: 'SQLite disaster recovery: corruption (.recover or backup), WAL corruption, disk space exhaustion',
    schema: sqliteRecoveryInputSchema,
    ownApproval: 'its plan (recover, or restore a backup and lose the writes after it) follows the damage it finds',
  },
  'sqlite-restore': {
    workflowType: 'sqliteRestore',
    description: 'Restore a SQLite database from its newest verified backup (emergency rollback), forensic copy first',
    schema: sqliteRestoreInputSchema,
    ownApproval: 'its plan is the backup it restores, and the writes after it that the live database loses',
  },
  'sqlite-fresh-start': {
    workflowType: 'sqliteFreshStart',
    description: 'Delete a failed SQLite database (forensic copy kept) and initialise it again from its schema',
    schema: sqliteFreshStartInputSchema,
    ownApproval: 'it deletes the whole database (kept only in a forensic copy)',
  },
  'output-recovery': {
    workflowType: 'outputRecovery',
    description:
      'Detect corrupt job outputs, quarantine them, restore verified backup copies, replay the rest (child job-replay)',
    schema: outputRecoveryInputSchema,
    ownApproval: 'its plan is the set of outputs it quarantines and replaces, detected when it runs',
  },
  'emergency-ladder': {
    workflowType: 'emergencyLadder',
    description: 'L1 restart → L2 last known good → L3 emergency configuration → escalate; stops when healthy',
    schema: emergencyLadderInputSchema,
    ownApproval: "each level it climbs asks for its own approval of that level's plan",
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
    ownApproval: 'its plan is the phase it moves the processor to (and rolls back to), approved on its own',
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
    ownApproval: 'its plan is the backup it restores, and the writes after it that the live database loses',
  },
  'test-data-cleanup': {
    workflowType: 'testDataCleanup',
    description:
      'Delete the test data an environment describes (tables, predicates, relations) in one verified transaction',
    schema: testDataCleanupInputSchema,
    ownApproval: 'its plan is the exact set of rows it deletes (counts per table, the id set), identified when it runs',
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
