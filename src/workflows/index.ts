/** The one workflowsPath: every runbook is exported from here. */
export { featureFlagRollback } from './feature-flag-rollback.js';
export { dualWriteRollback } from './dual-write-rollback.js';
export { dualWriteRepairPartition } from './dual-write-partition.js';
export { targetLock } from './target-lock.js';
export { sqliteBackup } from './sqlite-backup.js';
export { sqliteDrill } from './sqlite-drill.js';
export { sqliteMilestoneRollback } from './sqlite-milestone-rollback.js';
export { sqliteRecovery } from './sqlite-recovery.js';
export { sqliteRestore } from './sqlite-restore.js';
export { sqliteFreshStart } from './sqlite-fresh-start.js';
export { outputRecovery } from './output-recovery.js';
export { emergencyLadder } from './emergency-ladder.js';
export { jobReplay } from './job-replay.js';
export { jobReplayRequeue } from './job-replay-requeue.js';
export { backendPhaseSwitch } from './backend-phase-switch.js';
export { testDataCleanup } from './test-data-cleanup.js';
export { triage } from './triage.js';
