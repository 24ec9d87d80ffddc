import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { HISTORIES_DIR } from './support/histories.js';

/**
 * Stored histories of real runs (test/histories, refreshed with `UPDATE_HISTORIES=1 npm test`) replayed
 * against today's workflow code: a change that would break running workflows fails here.
 */
// top level: current runs; subdirectories: histories of earlier code versions that must keep replaying
const files = (readdirSync(HISTORIES_DIR, { recursive: true }) as string[]).filter((f) => f.endsWith('.json')).sort();

describe('replay of stored histories', () => {
  it('has histories for every path worth protecting', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'feature-flag-rollback.approve-path.json',
        'feature-flag-rollback.reject-path.json',
        'feature-flag-rollback.abort-after-change.json',
        'feature-flag-rollback.approval-timeout.json',
        'feature-flag-rollback.cancel-from-temporal-cli.json',
        'feature-flag-rollback.worker-killed-during-step.json',
        'dual-write-rollback.postgres-authoritative.json',
        'dual-write-rollback.abort-during-execute.json',
        'dual-write-rollback.worker-killed-during-execute.json',
        'dual-write-rollback.dry-run-would-halt.json',
        'dual-write-check.incremental.json',
        'dual-write-check.critical-page.json',
        'dual-write-check.tracked.json',
        'dual-write-repair-partition.authorized.json',
        'feature-flag-rollback.signed-quorum-and-ignored-decisions.json',
        'feature-flag-rollback.target-busy.json',
        'feature-flag-rollback.waited-for-the-target.json',
        'target-lock.two-runs-in-turn.json',
        'sqlite-backup.while-writing.json',
        'sqlite-backup.worker-killed-while-compressing.json',
        'sqlite-drill.succeeded.json',
        'sqlite-drill.skipped-invalid-backups.json',
        'sqlite-drill.validation-failed.json',
        'sqlite-milestone-rollback.vector-approve-path.json',
        'sqlite-milestone-rollback.abort-after-drop.json',
        'sqlite-recovery.corruption-recover.json',
        'sqlite-restore.approve-path.json',
        'sqlite-restore.abort-during-monitoring.json',
        'sqlite-restore.worker-killed.json',
        'sqlite-fresh-start.approve-path.json',
        'sqlite-fresh-start.abort-during-monitoring.json',
        'output-recovery.approve-no-replay.json',
        'output-recovery.approve-with-replay.json',
        'output-recovery.abort-after-quarantine.json',
        'output-recovery.dry-run.json',
        'emergency-ladder.healthy-after-level-2.json',
        'emergency-ladder.escalated.json',
        'emergency-ladder.rejected-at-level-3.json',
        'emergency-ladder.abort-during-level-3.json',
        'emergency-ladder.cancelled-at-level-3-approval.json',
        'emergency-ladder.signed-stages.json',
        'job-replay.approve-path.json',
        'job-replay.postgres.json',
        'job-replay.pause-resume.json',
        'job-replay.abort-restores-override.json',
        'job-replay.vanished-job.json',
        'job-replay.worker-killed.json',
        'job-replay.dry-run.json',
        'job-replay-requeue.continued-as-new.json',
        'backend-phase-switch.progressive-cut-over.json',
        'backend-phase-switch.soak-fails-rolls-back.json',
        'backend-phase-switch.checkpoint-2.1.json',
        'backend-phase-switch.worker-killed-during-soak.json',
        'postgres-backup.manual-tag.json',
        'postgres-restore.approve-path.json',
        'postgres-restore.abort-after-swap.json',
        'postgres-restore.worker-killed-during-restore.json',
        'test-data-cleanup.approve-path.json',
        'test-data-cleanup.verify-fails-undo.json',
        'test-data-cleanup.abort-during-delete.json',
        'triage.chain.json',
        'triage.child-failed.json',
        'triage.dry-run.json',
        'triage.cleanup-own-approval.json',
        'triage.cleanup-rejected.json',
        'test-data-cleanup.under-triage-own-approval.json',
        'feature-flag-rollback.enable-dual-write.json',
        // runs started before engine v2 (unsigned approvals, plan-only hashes, no target lock) keep replaying
        'archive/before-engine-v2/feature-flag-rollback.approve-path.json',
        'archive/before-engine-v2/feature-flag-rollback.quorum-and-ignored-approvals.json',
        'archive/before-engine-v2/dual-write-rollback.abort-during-execute.json',
        'archive/before-engine-v2/dual-write-rollback.worker-killed-during-execute.json',
      ]),
    );
  });

  it.each(files)('%s replays deterministically', async (file) => {
    // histories recorded since engine v2 carry their workflow id (signed decisions are bound to it)
    const { workflowId = file, ...json } = JSON.parse(readFileSync(join(HISTORIES_DIR, file), 'utf8'));
    const history = historyFromJSON(json);
    await expect(
      Worker.runReplayHistory(
        { workflowBundle: { codePath: inject('workflowBundlePath') }, replayName: file },
        history,
        workflowId,
      ),
    ).resolves.toBeUndefined();
  });
});
