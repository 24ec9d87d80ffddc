import { workflowInfo } from '@temporalio/workflow';
import type { PostgresActivities } from '../activities/postgres/index.js';
import type { PgServiceState } from '../activities/postgres/restore.js';
import { formatBytes } from '../shared/bytes.js';
import { formatDuration } from '../shared/duration.js';
import { parseRunbookInput, tightenApproval } from '../shared/input.js';
import { postgresRestoreInputSchema, type PostgresRestoreInput } from '../shared/schemas.js';
import type { RunbookResult } from '../shared/types.js';
import { runbookActivities } from './engine/activity-options.js';
import { Runbook } from './engine/runbook.js';
import { backupNameFor } from './sqlite/names.js';

const acts = runbookActivities<PostgresActivities>('quick');
const long = runbookActivities<PostgresActivities>('long');
const undo = runbookActivities<PostgresActivities>('longUndo');

export const POSTGRES_RESTORE_STEPS = [
  'load environment',
  'choose backup',
  'baseline counts',
  'seal plan',
  'approval',
  'stop application',
  'safety dump',
  'restore into new database',
  'validate restore',
  'swap',
  'start application',
  'health',
  'compare counts',
] as const;

const describeServices = (services: PgServiceState[]) =>
  services
    .map((s) => `${s.name} ${s.replicas !== undefined ? `${s.replicas} replicas` : s.running ? 'running' : 'stopped'}`)
    .join(', ') || 'no services';

/**
 * Postgres restore from a backup (seed: feature-flag-dual-write-rollback.md, scenario 4 "nuclear option"):
 *
 * choose the newest verified backup (before `before`), or the named one — newer ones whose signed manifest,
 * size or digest fail are skipped, each with its reason, in the plan → baseline: the configured count queries on
 * the live database → approval → stop the application (Kubernetes: scale to 0; undo: back to the replica count it
 * had) → safety dump of the live database (signed, in <backups>/safety) → pg_restore into a NEW database (undo:
 * drop it) → validate its row counts against the backup's manifest → swap by rename in one transaction: the live
 * database is kept as `<db>_pre_<run>`, the restored one takes its name (undo, registered before: swap back) →
 * start the application (undo: stop it) → health → the count queries against the baseline, as configured.
 */
export async function postgresRestore(rawInput: PostgresRestoreInput): Promise<RunbookResult> {
  const input = parseRunbookInput(postgresRestoreInputSchema, rawInput);
  const ref = { environment: input.environment, target: input.target };
  const rb = new Runbook({
    runbook: 'postgres-restore',
    ...ref,
    requester: input.requester,
    reason: input.reason,
    dryRun: input.dryRun,
    steps: POSTGRES_RESTORE_STEPS,
    lockWait: input.lockWait,
  });
  const { workflowId, runId } = workflowInfo();
  const run = runId.replace(/[^a-z0-9]/g, '').slice(-8);
  let choice: Awaited<ReturnType<PostgresActivities['choosePostgresBackup']>> | undefined;
  let baseline: Record<string, number> | undefined;
  let names: { incoming: string; keepAs: string } | undefined;
  let safety: { file: string; sha256: string } | undefined;
  let compared: Awaited<ReturnType<PostgresActivities['comparePostgresCounts']>> | undefined;
  let swapped = false;

  return rb.run(
    async () => {
      const target = await rb.step('load environment', () => acts.describePostgresTarget(ref), {
        summarize: (t) =>
          `database ${t.database}; services ${t.services.map((s) => s.name).join(', ') || 'none'}; backups ${t.backupsDir}`,
      });
      rb.usePolicy(tightenApproval(target.approval, input.approval), target.escalation);
      names = { incoming: `${target.database}_rs_${run}`, keepAs: `${target.database}_pre_${run}` };
      const swapRef = { ...ref, ...names };

      choice = await rb.step(
        'choose backup',
        () => acts.choosePostgresBackup({ ...ref, backup: input.backup, before: input.before }),
        {
          summarize: (c) =>
            `${c.chosen.file} (${c.chosen.createdAt}, ${formatBytes(c.chosen.bytes)})${c.skipped.length ? `; skipped ${c.skipped.length} newer: ${c.skipped.map((s) => `${s.file}: ${s.reason}`).join('; ')}` : ''}`,
        },
      );
      const backup = choice.chosen;
      const live = await rb.step(
        'baseline counts',
        async () => ({ counts: await acts.postgresCounts(ref), services: await acts.postgresServiceStates(ref) }),
        {
          summarize: (b) =>
            `${
              Object.entries(b.counts)
                .map(([k, v]) => `${k}=${v}`)
                .join(', ') || 'no count queries'
            }; ${describeServices(b.services)}`,
        },
      );
      baseline = live.counts;

      const lost = formatDuration(Math.max(0, Date.now() - Date.parse(backup.createdAt)));
      await rb.approval({
        summary:
          `restore ${target.database} from ${backup.file} taken ${backup.createdAt}: every write after it (${lost} so far) ` +
          `is lost from the live database, kept in the old database ${names.keepAs} and a safety dump; services ` +
          `${describeServices(live.services)} are stopped and started again as they were; on failure or abort the ` +
          `old database is swapped back`,
        changes: [
          {
            item: `database ${target.database}`,
            from: 'current data',
            to: `${backup.file} (taken ${backup.createdAt})`,
          },
          { item: `database ${names.keepAs}`, from: null, to: `the current ${target.database}, kept` },
          ...live.services.map((s) => ({
            item: `service ${s.name}`,
            from: s.replicas !== undefined ? `${s.replicas} replicas` : s.running ? 'running' : 'stopped',
            to: 'stopped for the restore, then as before',
          })),
        ],
        details: {
          backup,
          skipped: choice.skipped,
          before: input.before ?? null,
          baseline,
          compare: target.counts,
          newDatabase: names.incoming,
          previousDatabase: names.keepAs,
          dataLossSince: backup.createdAt,
          reason: input.reason,
        },
      });

      let servicesBefore: PgServiceState[] | undefined;
      await rb.step(
        'stop application',
        async () => {
          servicesBefore = await acts.postgresServiceStates(ref);
          return { before: servicesBefore, stopped: await long.stopPostgresServices(ref) };
        },
        {
          summarize: (s) => `${s.stopped.join(', ') || 'no services'} stopped (were: ${describeServices(s.before)})`,
          undoBefore: async () => {
            if (servicesBefore) await undo.startPostgresServices({ ...ref, before: servicesBefore });
          },
        },
      );
      safety = await rb.step(
        'safety dump',
        () =>
          long.takePostgresSafetyDump({
            ...ref,
            name: backupNameFor(target.prefix, new Date(), 'safety', runId),
            workflowId,
            runId,
          }),
        { summarize: (d) => `${d.file} (${formatBytes(d.bytes)}, sha256 ${d.sha256.slice(0, 12)}…)` },
      );
      await rb.step(
        'restore into new database',
        () => long.restorePostgresBackup({ ...ref, file: backup.file, database: names!.incoming }),
        {
          summarize: (r) => `${backup.file} (${formatBytes(r.bytes)}) restored into ${r.database}`,
          undoBefore: () => undo.dropPostgresDatabase({ ...ref, database: names!.incoming }),
        },
      );
      await rb.step(
        'validate restore',
        () => acts.validatePostgresRestore({ ...ref, database: names!.incoming, expected: backup.rows }),
        { summarize: (v) => `${v.tables} tables, ${v.rows} rows: as in the manifest` },
      );
      await rb.step('swap', () => acts.swapPostgresDatabases(swapRef), {
        summarize: (s) => `${s.state}: ${names!.incoming} is now ${target.database}; the old one is ${s.previous}`,
        undoBefore: () => undo.swapBackPostgresDatabases(swapRef),
      });
      swapped = true;
      await rb.step('start application', () => long.startPostgresServices({ ...ref, before: servicesBefore! }), {
        summarize: (s) => `${s.join(', ') || 'no services'} started`,
        undo: () => undo.stopPostgresServices(ref),
      });
      await rb.step('health', () => long.checkPostgresHealth(ref), { summarize: (s) => s });
      compared = await rb.step('compare counts', () => acts.comparePostgresCounts({ ...ref, baseline: baseline! }), {
        summarize: (c) =>
          c.map((r) => `${r.name} ${r.before} → ${r.after} (±${r.allowed})`).join(', ') || 'no count queries',
      });
    },
    () => {
      const swap = rb.state.steps.find((s) => s.name === 'swap');
      return {
        backup: choice && {
          file: choice.chosen.file,
          createdAt: choice.chosen.createdAt,
          sha256: choice.chosen.sha256,
        },
        skipped: choice?.skipped ?? [],
        baseline,
        counts: compared,
        previousDatabase: swapped && swap?.status !== 'compensated' ? names?.keepAs : undefined,
        swappedBack: swap?.status === 'compensated',
        safetyDump: safety,
        dataLoss:
          swapped && swap?.status !== 'compensated' && choice
            ? `every write after ${choice.chosen.createdAt} is not in the restored database; ${names?.keepAs} keeps the database as it was`
            : 'none: the database was not replaced',
      };
    },
  );
}
