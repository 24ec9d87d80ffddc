import { ApplicationFailure } from '@temporalio/workflow';
import type { SqliteActivities } from '../activities/sqlite/index.js';
import { formatBytes } from '../shared/bytes.js';
import { ErrorType } from '../shared/constants.js';
import { parseRunbookInput } from '../shared/input.js';
import { sqliteFreshStartInputSchema, type SqliteFreshStartInput } from '../shared/schemas.js';
import type { RunbookResult } from '../shared/types.js';
import { runbookActivities } from './engine/activity-options.js';
import { RETURN_TO_SERVICE_STEPS, recoveryRun } from './sqlite/recovery.js';

const long = runbookActivities<SqliteActivities>('long');
const undo = runbookActivities<SqliteActivities>('longUndo');

export const SQLITE_FRESH_START_STEPS = [
  'load environment',
  'inspect',
  'check space',
  'seal plan',
  'approval',
  'stop services',
  'forensic copy',
  'delete database',
  're-initialise',
  ...RETURN_TO_SERVICE_STEPS,
] as const;

/**
 * SQLite fresh start (seed §1.1 type 1, §2.1): the database failed its initialisation or is beyond saving and
 * holds nothing that must be kept — delete it and initialise it again.
 *
 * load environment (it must say how: `sqlite.init`) → inspect → check space → plan + approval → stop services
 * (undo: start them) → forensic copy of db + wal + shm (seed §2.1 step 2 "backup failed database for forensics")
 * → delete db, wal and shm (undo, registered before it acts: put the forensic copy back, byte-identical) →
 * re-initialise (`init.sqlFile` run whole in one transaction on a new file renamed into place, or `init.command`)
 * → validate (integrity, FK, core tables, minimum tables and indexes; a fresh database has no rows, so the smoke
 * queries are not asked) → start services (undo: stop them) → health and HTTP smoke → monitoring window → RTO.
 */
export async function sqliteFreshStart(rawInput: SqliteFreshStartInput): Promise<RunbookResult> {
  const input = parseRunbookInput(sqliteFreshStartInputSchema, rawInput);
  const { rb, r, ref } = recoveryRun('sqlite-fresh-start', input, SQLITE_FRESH_START_STEPS, 're-initialise');
  let initialised: string | undefined;

  return rb.run(
    async () => {
      const target = await r.loadEnvironment();
      if (!target.init)
        throw ApplicationFailure.nonRetryable(
          `${target.environmentFile}: targets.${ref.target}.sqlite.init: not set (a fresh start needs sqlFile or command)`,
          ErrorType.EnvironmentInvalid,
        );
      const { inspection, services } = await r.inspect();
      await r.checkSpace(0, 'fresh start');

      await r.approval({
        summary:
          `delete ${target.database} (${inspection.exists ? formatBytes(inspection.bytes + inspection.walBytes) : 'missing'}) ` +
          `and initialise it again from ${target.init}: every row it holds is gone from the live database and kept only ` +
          `in the forensic copy ${r.forensicDir}; ${r.planSummaryTail('fresh start')}`,
        changes: [
          {
            item: target.database,
            from: inspection.exists ? `current database (${formatBytes(inspection.bytes)})` : 'missing',
            to: `a new database from ${target.init}`,
          },
          ...r.planChanges(services, 'fresh start'),
        ],
        details: {
          init: target.init,
          coreTables: target.coreTables,
          minIndexes: target.minIndexes,
          ...r.planDetails(),
          reason: input.reason,
        },
      });

      await r.stopServices();
      await r.forensicCopy();
      const tagRef = { ...ref, tag: r.tag };
      await r.step('delete database', () => long.removeSqliteDatabase(tagRef), {
        summarize: (d) => `${d.removed.join(', ') || 'nothing'} removed (kept in ${r.forensicDir})`,
        undoBefore: () => undo.putBackSqliteForensicCopy(tagRef),
      });
      r.dataLoss = `every row of the old database is gone from the live one (a fresh start); the forensic copy ${r.forensicDir} keeps it`;
      const init = await r.step('re-initialise', () => long.initSqliteDatabase(tagRef), {
        summarize: (i) =>
          `${i.state} from ${i.how}${i.tables === undefined ? '' : `: ${i.tables} tables, ${i.indexes} indexes`}`,
      });
      initialised = init.how;
      // a fresh database has no rows for the smoke queries
      await r.returnToService({ smokeSql: false });
    },
    () => {
      if (rb.state.steps.find((s) => s.name === 'delete database')?.status === 'compensated')
        r.dataLoss = 'none: the old database was put back';
      return { ...r.facts(), initialisedFrom: initialised ?? null };
    },
  );
}
