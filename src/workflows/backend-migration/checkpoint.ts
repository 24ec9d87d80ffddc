import type { MigrationActivities, MigrationTargetDescription } from '../../activities/migration/index.js';
import { formatDuration, parseDuration } from '../../shared/duration.js';
import type { MigrationValues } from '../../shared/migration.js';
import type { BackendPhaseSwitchParams } from '../../shared/schemas.js';
import { runbookActivities } from '../engine/activity-options.js';
import type { Runbook } from '../engine/runbook.js';
import { showValues, type PhaseSwitchRun, type PhaseSwitchStep } from './steps.js';

const acts = runbookActivities<MigrationActivities>('quick');
const verify = runbookActivities<MigrationActivities>('verify');
const undo = runbookActivities<MigrationActivities>('undo');

/**
 * Roll back to a named checkpoint (seed 1.1–3.2): [stop the services] → [put back the last known good
 * configuration; the replaced bytes stay as `.failed_backup`] → set the checkpoint's keys → restart (or start) its
 * services → health → a processing-log line matching its pattern → notify. Each change has its undo: a run that
 * fails validation leaves the configuration and the services as it found them, and says so.
 */
export async function checkpointRollback(
  rb: Runbook<PhaseSwitchStep>,
  ref: { environment: string; target: string },
  input: BackendPhaseSwitchParams,
  target: MigrationTargetDescription,
  current: MigrationValues,
  run: PhaseSwitchRun,
): Promise<void> {
  const name = input.checkpoint!;
  const cp = target.checkpoints[name]!;
  const services = cp.restart.length ? cp.restart : Object.keys(target.services);
  run.checkpoint = name;
  run.to = `checkpoint ${name}`;
  const pattern = cp.validate.logPattern;
  await rb.approval({
    summary:
      `roll ${ref.environment}/${ref.target} back to checkpoint ${name}${cp.description ? ` (${cp.description})` : ''}: ` +
      [
        cp.stopFirst ? `stop ${services.join(', ')}` : undefined,
        cp.restoreLastKnownGood ? `put back the last known good configuration (${target.lastKnownGood})` : undefined,
        Object.keys(cp.set).length ? `set ${showValues(cp.set)}` : undefined,
        `${cp.stopFirst ? 'start' : 'restart'} ${services.join(', ')}`,
        `health${pattern ? `, a log line matching "${pattern}" within ${cp.validate.within}` : ''}`,
      ]
        .filter(Boolean)
        .join(' → '),
    changes: Object.entries(cp.set)
      .filter(([item, to]) => (current[item] ?? null) !== to)
      .map(([item, to]) => ({ item, from: current[item] ?? null, to })),
    details: {
      checkpoint: name,
      ...cp,
      services,
      configStore: target.configStore,
      lastKnownGood: target.lastKnownGood,
      reason: input.reason,
    },
  });
  rb.skip('soak', 'a rollback to a checkpoint is validated, not soaked');

  if (cp.stopFirst)
    await rb.step('stop services', () => acts.restartServices({ ...ref, names: cp.restart, action: 'stop' }), {
      summarize: (r) => r.map((s) => `${s.name}: ${s.state}`).join('; '),
      // registered first: whatever fails later, the services run again at the end
      undoBefore: () => undo.restartServices({ ...ref, names: cp.restart, action: 'start' }),
    });
  else rb.skip('stop services', `checkpoint ${name} restarts the services in place`);

  if (cp.restoreLastKnownGood)
    await rb.step('restore last known good', () => acts.restoreLastKnownGood(ref), {
      summarize: (r) =>
        `${r.changed ? 'restored' : 'already in place'} (sha256 ${r.restoredDigest.slice(0, 12)}…); replaced ${r.replacedDigest.slice(0, 12)}…${r.failedBackup ? ` kept as ${r.failedBackup}` : ''}`,
      undo: (r) =>
        r.failedBackup ? undo.putBackFailedBackup({ ...ref, replacedDigest: r.replacedDigest }) : Promise.resolve(),
    });
  else rb.skip('restore last known good', `checkpoint ${name} does not restore the last known good configuration`);

  // where the logs are before the restart: the validation looks at lines written after it
  const cursor = await rb.step(
    'write configuration',
    async () => {
      const at = pattern ? await acts.migrationLogCursor(ref) : undefined;
      const written = Object.keys(cp.set).length
        ? await acts.writeConfig({ ...ref, values: cp.set })
        : { changed: false, before: {} };
      return { at, written };
    },
    {
      summarize: (r) =>
        Object.keys(cp.set).length
          ? `${showValues(cp.set)}: ${r.written.changed ? 'written' : 'already set'}`
          : 'no keys to set',
      undo: (r) =>
        Object.keys(cp.set).length
          ? undo.writeConfig({ ...ref, values: r.written.before, onlyIfCurrent: cp.set })
          : Promise.resolve(),
    },
  );
  await rb.step(
    'apply',
    () => acts.restartServices({ ...ref, names: cp.restart, action: cp.stopFirst ? 'start' : 'restart' }),
    { summarize: (r) => r.map((s) => `${s.name}: ${s.state}`).join('; ') },
  );
  await rb.step('wait healthy', () => verify.waitMigrationHealthy(ref), {
    summarize: (r) => `HTTP ${r.status} after ${formatDuration(r.ms)}`,
  });
  if (pattern) {
    const waitLog = runbookActivities<MigrationActivities>('verify', {
      startToCloseTimeout: parseDuration(cp.validate.within) + 60_000,
    });
    await rb.step(
      'validate',
      () => waitLog.waitForLogLine({ ...ref, pattern, within: cp.validate.within, cursor: cursor.at }),
      { summarize: (r) => `after ${formatDuration(r.ms)}: ${r.line.slice(0, 200)}` },
    );
  } else rb.skip('validate', `checkpoint ${name} names no log pattern: health only`);
  rb.skip('snapshot last known good', 'a rollback does not make a new last known good');
  run.steps.push({ phase: `checkpoint ${name}`, forward: false, result: 'validated' });
  run.rolledBackTo = `checkpoint ${name}`;
  await rb.step(
    'notify',
    () => {
      run.notification = `${ref.environment}/${ref.target} rolled back to checkpoint ${name} (from ${run.from}); requested by ${input.requester}: ${input.reason}`;
      return rb.notify(`Backend migration: ${ref.environment}/${ref.target} at checkpoint ${name}`, run.notification);
    },
    { summarize: (sent) => (sent ? 'sent' : 'delivery failed (see worker log)') },
  );
}
