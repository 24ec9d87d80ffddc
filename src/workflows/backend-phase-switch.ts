import { ApplicationFailure } from '@temporalio/workflow';
import type { MigrationActivities, MigrationTargetDescription } from '../activities/migration/index.js';
import { ErrorType } from '../shared/constants.js';
import { formatDuration, parseDuration } from '../shared/duration.js';
import { invalidInput, lengthenDuration, parseRunbookInput, tightenApproval } from '../shared/input.js';
import {
  describePhase,
  phaseOf,
  phaseValues,
  planPhaseSteps,
  type MigrationValues,
  type PhaseStep,
} from '../shared/migration.js';
import {
  backendPhaseSwitchInputSchema,
  type BackendPhaseSwitchInput,
  type BackendPhaseSwitchParams,
} from '../shared/schemas.js';
import type { PlanChange, RunbookResult } from '../shared/types.js';
import { checkpointRollback } from './backend-migration/checkpoint.js';
import { BACKEND_PHASE_SWITCH_STEPS, showValues, type PhaseSwitchRun } from './backend-migration/steps.js';
import { soakWindow, type SoakProgress } from './backend-migration/soak.js';
import { runbookActivities } from './engine/activity-options.js';
import { Runbook } from './engine/runbook.js';

export { BACKEND_PHASE_SWITCH_STEPS } from './backend-migration/steps.js';

const acts = runbookActivities<MigrationActivities>('quick');
const verify = runbookActivities<MigrationActivities>('verify');
const undo = runbookActivities<MigrationActivities>('undo');
const undoVerify = runbookActivities<MigrationActivities>('verify', { retry: { maximumAttempts: 5 } });

const label = (s: { phase: string; percent: number }) => describePhase(s as PhaseStep);

/**
 * Backend phase switch (seed: backend-migration-dual-write-and-replay.md; docs/backend-migration.md): move a job
 * processor between primary-only → dual-write → cut-over N% → new-only, or back to a named checkpoint.
 *
 * load environment → read the configuration (its phase) → plan (each step's key changes; a progressive cut-over
 * steps through the environment's cutoverSteps) → approval → per step: write the keys (expectCurrent: the values
 * the plan saw) → reload the services → health → soak window on durable timers (health, error rate and latency
 * per backend from /metrics against `migration.soak`; forward steps only) → after every soak passed: last known
 * good snapshot → notify.
 *
 * Undo, registered before the first write: the values of the last checkpoint that passed (the values before the
 * failing step) written back where the run's values still stand (through `rollbackCheckpoints[phase]` when one is
 * configured: its stop/restart and log validation), reload, health, notify. So a failed soak rolls back by itself
 * and the run ends failed with SoakFailed naming the check and the checkpoint it returned to.
 */
export async function backendPhaseSwitch(rawInput: BackendPhaseSwitchInput): Promise<RunbookResult> {
  const input = parseRunbookInput(backendPhaseSwitchInputSchema, rawInput);
  const ref = { environment: input.environment, target: input.target };
  const rb = new Runbook({
    runbook: 'backend-phase-switch',
    ...ref,
    requester: input.requester,
    reason: input.reason,
    dryRun: input.dryRun,
    steps: BACKEND_PHASE_SWITCH_STEPS,
    lockWait: input.lockWait,
  });
  const run: PhaseSwitchRun = { steps: [] };

  return rb.run(
    async () => {
      const target = await rb.step('load environment', () => acts.describeMigrationTarget(ref), {
        summarize: (t) => `${t.configStore}; services ${Object.keys(t.services).join(', ')}`,
      });
      rb.usePolicy(tightenApproval(target.approval, input.approval), target.escalation);
      const checkpoint = input.checkpoint;
      if (checkpoint !== undefined && !target.checkpoints[checkpoint])
        throw invalidInput(
          `checkpoint: "${checkpoint}" is not a checkpoint of ${input.environment}/${input.target} (known: ${Object.keys(target.checkpoints).join(', ') || 'none'})`,
        );
      const soak = lengthenDuration('soakWindow', target.soak.window, input.soakWindow);
      const names = checkpoint ? Object.keys(target.checkpoints[checkpoint]!.set) : [];
      const read = await rb.step('read configuration', () => acts.readConfig({ ...ref, names }), {
        summarize: (r) => `${describePhase(r.phase)}: ${showValues(r.values)}`,
      });
      checkBackends(read.values, target);
      run.from = describePhase(read.phase);
      if (checkpoint !== undefined) {
        await checkpointRollback(rb, ref, input, target, read.values, run);
        return;
      }
      if (read.phase.phase === 'custom')
        throw ApplicationFailure.nonRetryable(
          `the configuration is in no phase of the table (${read.phase.reason}): plan drift; roll back to a checkpoint (checkpoint: …) first`,
          ErrorType.PlanStale,
        );
      await switchPhases(rb, ref, input, target, read.phase, read.values, soak, run);
    },
    () => ({ ...run }),
  );
}

/** A backend named in the configuration that is not one of the environment's: InvalidInput naming the key. */
function checkBackends(values: MigrationValues, target: MigrationTargetDescription): void {
  const primary = values[target.keys.primary];
  const known = [target.backends.old, target.backends.new];
  if (primary !== null && primary !== undefined && !known.includes(primary))
    throw invalidInput(
      `configuration ${target.keys.primary}: "${primary}" is not a backend of this target (${known.join(', ')})`,
    );
}

async function switchPhases(
  rb: Runbook<(typeof BACKEND_PHASE_SWITCH_STEPS)[number]>,
  ref: { environment: string; target: string },
  input: BackendPhaseSwitchParams,
  target: MigrationTargetDescription,
  current: { phase: PhaseStep['phase']; percent: number },
  currentValues: MigrationValues,
  soak: string,
  run: PhaseSwitchRun,
): Promise<void> {
  const to = { phase: input.to!, percent: input.percent ?? 0 };
  const steps = planPhaseSteps(current, to, target.cutoverSteps);
  const values = steps.map((s) => phaseValues(s.phase, s.percent, target));
  run.to = label(to);
  const changes: PlanChange[] = [];
  let previous = currentValues;
  steps.forEach((s, i) => {
    for (const [key, value] of Object.entries(values[i]!))
      if ((previous[key] ?? null) !== value)
        changes.push({ item: `${i + 1}. ${label(s)}: ${key}`, from: previous[key] ?? null, to: value });
    previous = values[i]!;
  });
  const forward = steps.filter((s) => s.forward).length;
  const plan = {
    summary: steps.length
      ? `${describePhase({ ...current })} → ${label(to)} on ${ref.environment}/${ref.target} in ${steps.length} step(s): ${steps.map(label).join(' → ')}; ${forward ? `soak ${soak} after each forward step, a failed soak rolls back by itself (through rollbackCheckpoints when configured)` : 'a step back: health only, no soak'}`
      : `${ref.environment}/${ref.target} is already at ${label(to)}: nothing to change`,
    changes,
    details: {
      from: describePhase({ ...current }),
      to: label(to),
      steps: steps.map((s, i) => ({ phase: label(s), forward: s.forward, values: values[i] })),
      configStore: target.configStore,
      services: target.services,
      soak: { ...target.soak, window: soak },
      rollbackCheckpoints: target.rollbackCheckpoints,
      reason: input.reason,
    },
  };
  if (steps.length === 0) {
    await rb.seal(plan);
    for (const s of BACKEND_PHASE_SWITCH_STEPS.slice(3)) rb.skip(s, `already at ${label(to)}`);
    return;
  }
  await rb.approval(plan);
  rb.skip('stop services', 'a phase switch reloads the services in place');
  rb.skip('restore last known good', 'a phase switch writes the phase keys');
  rb.skip('validate', 'health and the soak validate a phase switch');

  // the last checkpoint that passed: where an undo returns to
  let checkpoint = { values: currentValues, label: describePhase({ ...current }) };
  let failing: { step: PhaseStep; values: MigrationValues } | undefined;
  /** where a failure of `step` returns to: through its rollback checkpoint when configured, else the values before it */
  const rollbackOf = (step: PhaseStep) => {
    const name = step.forward ? target.rollbackCheckpoints[step.phase] : undefined;
    const cp = name ? target.checkpoints[name] : undefined;
    const values = { ...checkpoint.values, ...(cp?.set ?? {}) };
    const where = describePhase(phaseOf(values, target));
    return { name, cp, values, label: name ? `checkpoint ${name} (${where})` : where };
  };
  const rollback = async () => {
    if (!failing) return;
    const back = rollbackOf(failing.step);
    const { cp } = back;
    const pattern = cp?.validate.logPattern;
    const cursor = pattern ? await undo.migrationLogCursor(ref) : undefined;
    if (cp?.stopFirst) await undo.restartServices({ ...ref, names: cp.restart, action: 'stop' });
    if (cp?.restoreLastKnownGood) await undo.restoreLastKnownGood(ref);
    await undo.writeConfig({ ...ref, values: back.values, onlyIfCurrent: failing.values });
    await undo.restartServices({
      ...ref,
      names: cp?.restart,
      action: cp?.stopFirst ? 'start' : cp ? 'restart' : 'reload',
    });
    await undoVerify.waitMigrationHealthy(ref);
    if (pattern) {
      const within = cp!.validate.within;
      const waitLog = runbookActivities<MigrationActivities>('verify', {
        startToCloseTimeout: parseDuration(within) + 60_000,
        retry: { maximumAttempts: 5 },
      });
      await waitLog.waitForLogLine({ ...ref, pattern, within, cursor });
    }
    run.rolledBackTo = back.label;
    run.notification = `${ref.environment}/${ref.target}: ${label(failing.step)} failed; rolled back to ${back.label}: ${showValues(back.values)}. ${rb.state.error ?? ''}`;
    await rb.notify(`Backend migration rolled back on ${ref.environment}/${ref.target}`, run.notification);
  };

  for (const [i, step] of steps.entries()) {
    const stepValues = values[i]!;
    const where = { step: i + 1, of: steps.length, phase: label(step) };
    const entry = { phase: label(step), forward: step.forward, result: 'running' };
    run.steps.push(entry);
    rb.publish('progress', { ...where, stage: 'write configuration' });
    failing = { step, values: stepValues };
    await rb.step(
      'write configuration',
      () => acts.writeConfig({ ...ref, values: stepValues, expectCurrent: checkpoint.values }),
      {
        summarize: (r) => `${label(step)}: ${r.changed ? 'written' : 'already set'}`,
        ...(i === 0 ? { undoBefore: rollback } : {}),
      },
    );
    rb.publish('progress', { ...where, stage: 'apply' });
    await rb.step('apply', () => acts.restartServices({ ...ref, action: 'reload' }), {
      summarize: (r) => r.map((s) => `${s.name}: ${s.state}`).join('; '),
    });
    rb.publish('progress', { ...where, stage: 'wait healthy' });
    await rb.step('wait healthy', () => verify.waitMigrationHealthy(ref), {
      summarize: (r) => `HTTP ${r.status} after ${formatDuration(r.ms)}`,
    });
    if (step.forward) {
      try {
        const last = await rb.step(
          'soak',
          () =>
            soakWindow(ref, {
              label: label(step),
              window: soak,
              interval: target.soak.interval,
              unhealthyLooks: target.soak.unhealthyLooks,
              onProgress: (p: SoakProgress) => {
                rb.publish('progress', { ...where, stage: 'soak' });
                rb.publish('soak', { ...p });
              },
            }),
          {
            summarize: (p) => `${p.label}: ${p.looks} looks until ${p.deadline}, every check passed`,
            expectedDuration: `${Math.round(parseDuration(soak) * 1.5)}ms`,
          },
        );
        entry.result = `soaked: ${last.looks} looks until ${last.deadline}`;
      } catch (err) {
        entry.result = 'soak failed';
        if (err instanceof ApplicationFailure && err.type === ErrorType.SoakFailed)
          throw ApplicationFailure.nonRetryable(
            `${err.message}; rolling back to ${rollbackOf(step).label}`,
            ErrorType.SoakFailed,
          );
        throw err;
      }
    } else {
      rb.skip('soak', 'a step back has no soak: health only');
      entry.result = 'healthy';
    }
    checkpoint = { values: stepValues, label: label(step) };
  }
  failing = undefined;
  if (forward) {
    const saved = await rb.step('snapshot last known good', () => acts.snapshotLastKnownGood(ref), {
      summarize: (s) => `${s.file} sha256 ${s.digest.slice(0, 12)}…`,
    });
    run.lastKnownGood = { file: saved.file, digest: saved.digest };
  } else rb.skip('snapshot last known good', 'a step back is not soaked: the last known good stays as it was');
  rb.publish('progress', { step: steps.length, of: steps.length, phase: label(to), stage: 'done' });
  await rb.step(
    'notify',
    () => {
      run.notification = `${ref.environment}/${ref.target} moved ${run.from} → ${label(to)} (${steps.map(label).join(' → ')}); requested by ${input.requester}: ${input.reason}`;
      return rb.notify(`Backend migration: ${ref.environment}/${ref.target} at ${label(to)}`, run.notification);
    },
    { summarize: (sent) => (sent ? 'sent' : 'delivery failed (see worker log)') },
  );
}
