import type { createMigrationActivities } from '../activities/migration/index.js';
import { runbookActivities } from './engine/activity-options.js';
import type { Runbook } from './engine/runbook.js';

type MigrationActivities = ReturnType<typeof createMigrationActivities>;

const acts = runbookActivities<MigrationActivities>('quick');
const verify = runbookActivities<MigrationActivities>('verify');
const undo = runbookActivities<MigrationActivities>('undo');

type OverrideSteps = 'override backend' | 'restart services' | 'verify healthy' | 'restore backend';

/** The primary backend key's current value (null: not set). Called inside the run's 'load environment' step. */
export async function readPrimary(ref: { environment: string; target: string }, key: string): Promise<string | null> {
  const { values } = await acts.readConfig({ ...ref, names: [key] });
  return values[key] ?? null;
}

/**
 * The backend override of a job-replay run, through the migration config store (the other keys and every byte
 * around them stay as they are): set the primary backend key (its undo registered before it acts: the previous
 * value back while the key still holds the override, restart, healthy), restart the services, wait healthy.
 * `restore()` is the run's own last step; the undo covers failure, rejection, abort and cancel.
 */
export async function applyOverride<S extends string>(
  rb: Runbook<S | OverrideSteps>,
  ref: { environment: string; target: string },
  key: string,
  from: string | null,
  to: string,
): Promise<{ restore(): Promise<void> }> {
  const putBack = async (always: boolean) => {
    const { changed } = await undo.writeConfig({ ...ref, values: { [key]: from }, onlyIfCurrent: { [key]: to } });
    if (!changed && !always) return { changed };
    await undo.restartServices({ ...ref, action: 'restart' });
    await verify.waitMigrationHealthy(ref);
    return { changed };
  };
  await rb.step(
    'override backend',
    () => acts.writeConfig({ ...ref, values: { [key]: to }, expectCurrent: { [key]: from } }),
    {
      summarize: (r) => `${key}: ${from ?? '(unset)'} → ${to}${r.changed ? '' : ' (already)'}`,
      // after the run's own restore, a later failure finds the previous value and restarts nothing
      undoBefore: () => putBack(false),
    },
  );
  await rb.step('restart services', () => acts.restartServices({ ...ref, action: 'restart' }), {
    summarize: (s) => s.map((x) => `${x.name} ${x.state}`).join(', '),
  });
  await rb.step('verify healthy', () => verify.waitMigrationHealthy(ref), {
    summarize: (h) => `HTTP ${h.status} after ${h.ms} ms`,
  });
  return {
    restore: async () => {
      await rb.step('restore backend', () => putBack(true), {
        summarize: (r) =>
          `${key}: ${to} → ${from ?? '(unset)'}${r.changed ? '' : ' (was already)'}; restarted, healthy`,
      });
    },
  };
}
