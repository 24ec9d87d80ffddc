import { workflowInfo } from '@temporalio/workflow';
import type { BackupChoice } from '../activities/sqlite/choose.js';
import type { SandboxValidation } from '../activities/sqlite/drill.js';
import type { SqliteActivities } from '../activities/sqlite/index.js';
import { formatBytes } from '../shared/bytes.js';
import { formatDuration, parseDuration } from '../shared/duration.js';
import { parseRunbookInput, tightenApproval } from '../shared/input.js';
import { sqliteDrillInputSchema, type SqliteDrillInput } from '../shared/schemas.js';
import type { RunbookResult } from '../shared/types.js';
import { runbookActivities } from './engine/activity-options.js';
import { Runbook } from './engine/runbook.js';

const acts = runbookActivities<SqliteActivities>('quick');
const long = runbookActivities<SqliteActivities>('long');
const cleanup = runbookActivities<SqliteActivities>('undo');

export const SQLITE_DRILL_STEPS = [
  'load environment',
  'choose backup',
  'seal plan',
  'restore into sandbox',
  'validate',
  'measure',
  'clean up',
] as const;

/** What a drill reports (the result's `extra` and the evidence). */
export interface DrillReport {
  /** restore + validate, the seed's "rollback time" */
  rollbackTimeMs: number;
  restoreMs: number;
  validateMs: number;
  /** drill.target (seed: < 10 minutes) */
  targetMs: number;
  withinTarget: boolean;
  /** choosing and verifying the backup + the rollback time + the monitoring window a real restore watches */
  rtoEstimateMs: number;
  /** rto (seed: < 1 hour) */
  rtoMs: number;
  withinRto: boolean;
  validation: SandboxValidation & { ok: true };
}

const within = (ms: number, limitMs: number, what: string) =>
  `${ms < limitMs ? 'within' : 'OVER'} ${what} ${formatDuration(limitMs)}`;

/**
 * SQLite rollback drill (seed §5.1 "Backup Restore", §5.2 validation checklist): choose the newest verified
 * backup (a newer corrupt or unsigned one is skipped, with why) → restore it into a sandbox of this run, never
 * the live file → validate → measure the rollback time against the drill target and the RTO → remove the
 * sandbox. No approval: it changes nothing the application reads, and it runs from a schedule.
 */
export async function sqliteDrill(rawInput: SqliteDrillInput): Promise<RunbookResult> {
  const input = parseRunbookInput(sqliteDrillInputSchema, rawInput);
  const ref = { environment: input.environment, target: input.target };
  const rb = new Runbook({
    runbook: 'sqlite-drill',
    ...ref,
    requester: input.requester,
    reason: input.reason,
    dryRun: input.dryRun,
    steps: SQLITE_DRILL_STEPS,
    lockWait: input.lockWait,
  });
  const sandbox = { ...ref, run: workflowInfo().runId };
  let choice: BackupChoice | undefined;
  let report: DrillReport | undefined;

  return rb.run(
    async () => {
      const target = await rb.step('load environment', () => acts.describeSqliteTarget(ref), {
        summarize: (t) => `${t.database}: drill target ${t.drillTarget}, RTO ${t.rto}, sandbox in ${t.sandboxDir}`,
      });
      rb.usePolicy(tightenApproval(target.approval, input.approval), target.escalation);

      const choosing = Date.now();
      const { chosen, skipped } = (choice = await rb.step(
        'choose backup',
        () => long.chooseBackup({ ...ref, backup: input.backup }),
        {
          summarize: (c) =>
            `${c.chosen.file} (${formatBytes(c.chosen.bytes)}, taken ${c.chosen.createdAt}): sha256 matches its signed manifest` +
            (c.skipped.length ? `; skipped ${c.skipped.map((s) => `${s.file}: ${s.reason}`).join('; ')}` : ''),
        },
      ));
      const chooseMs = Date.now() - choosing;
      const dir = `${target.sandboxDir}/${sandbox.run}`;
      await rb.seal({
        summary: `drill: restore ${chosen.file} (${formatBytes(chosen.rawBytes)}) into ${dir}/, never the live ${target.database}; validate (seed §5.2); measure against the drill target ${target.drillTarget} and RTO ${target.rto}; remove the sandbox`,
        changes: [{ item: dir, from: null, to: 'sandbox copy, removed at the end' }],
        details: { backup: chosen, skipped, sandbox: dir, reason: input.reason },
      });

      const restoring = Date.now();
      await rb.step('restore into sandbox', () => long.restoreIntoSandbox({ ...sandbox, backup: chosen.file }), {
        summarize: (r) =>
          `${formatBytes(r.gzBytes)} → ${formatBytes(r.rawBytes)} in ${r.dir}; sha256 as in the manifest`,
        // a failed or aborted drill leaves no sandbox behind
        undoBefore: () => cleanup.removeSandbox(sandbox),
      });
      const validating = Date.now();
      const validation = await rb.step(
        'validate',
        () => long.validateSandbox({ ...sandbox, expectRows: chosen.rows }),
        {
          summarize: (v) =>
            `integrity ${v.integrity}, ${v.foreignKeyViolations} FK violations, ${v.tables} tables, ${v.indexes} indexes, ` +
            `${v.coreTables} core tables present, smoke queries ${v.smoke.passed}/${v.smoke.total}, core row counts as in the manifest`,
        },
      );
      const done = Date.now();

      report = await rb.step(
        'measure',
        async (): Promise<DrillReport> => {
          const rollbackTimeMs = done - restoring;
          const rtoEstimateMs = chooseMs + rollbackTimeMs + parseDuration(target.monitor.window);
          const targetMs = parseDuration(target.drillTarget);
          const rtoMs = parseDuration(target.rto);
          return {
            rollbackTimeMs,
            restoreMs: validating - restoring,
            validateMs: done - validating,
            targetMs,
            withinTarget: rollbackTimeMs < targetMs,
            rtoEstimateMs,
            rtoMs,
            withinRto: rtoEstimateMs < rtoMs,
            validation: { ...validation, ok: true },
          };
        },
        {
          summarize: (r) =>
            `rollback time ${formatDuration(r.rollbackTimeMs)} (restore ${formatDuration(r.restoreMs)} + validate ${formatDuration(r.validateMs)}) ${within(r.rollbackTimeMs, r.targetMs, 'the drill target')}; ` +
            `RTO estimate ${formatDuration(r.rtoEstimateMs)} (choose ${formatDuration(chooseMs)} + rollback + monitor window ${target.monitor.window}) ${within(r.rtoEstimateMs, r.rtoMs, 'the RTO')}`,
        },
      );
      await rb.step('clean up', () => cleanup.removeSandbox(sandbox), { summarize: (r) => `${r.removed} removed` });
    },
    () => ({ backup: choice?.chosen, skipped: choice?.skipped ?? [], ...report }),
  );
}
