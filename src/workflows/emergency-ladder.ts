import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import type { EmergencyActivities } from '../activities/migration/emergency.js';
import type { MigrationActivities } from '../activities/migration/index.js';
import { ErrorType } from '../shared/constants.js';
import { parseRunbookInput, tightenApproval } from '../shared/input.js';
import { emergencyLadderInputSchema, type EmergencyLadderInput } from '../shared/schemas/migration-inputs.js';
import type { RunbookResult } from '../shared/types.js';
import { runbookActivities } from './engine/activity-options.js';
import { Runbook } from './engine/runbook.js';
import { errorMessage } from './engine/stop.js';
import {
  emergencyValues,
  LADDER_LEVELS,
  ladderPlan,
  LEVEL_NAMES,
  LEVEL_STEPS,
  levelPlan,
  levelPolicies,
  type LadderFacts,
  type LadderLevel,
} from './emergency/ladder-plan.js';

type LadderActivities = MigrationActivities & EmergencyActivities;
const acts = runbookActivities<LadderActivities>('quick');
const undo = runbookActivities<LadderActivities>('undo');

export const EMERGENCY_LADDER_STEPS = [
  'load environment',
  'read configuration',
  'seal plan',
  'level 1 approval',
  'level 1 restart',
  'level 1 health check',
  'level 2 approval',
  'level 2 restore last known good',
  'level 2 restart',
  'level 2 health check',
  'level 3 read configuration',
  'level 3 approval',
  'level 3 set emergency configuration',
  'level 3 restart',
  'level 3 health check',
  'escalate to people',
] as const;
type LadderStep = (typeof EMERGENCY_LADDER_STEPS)[number];

/** What one level did, for the result, the status and the evidence. */
export interface LevelReport {
  level: LadderLevel;
  action: string;
  /** `automatic`, `approved by …`, or why the level did not run */
  approval?: string;
  healthy?: boolean;
  problem?: string;
  skipped?: string;
}

/**
 * Emergency ladder (seed: "Emergency Procedures for Production Issues"): level 1 restart → health check → level 2
 * the last known good configuration (the configuration as found is kept as `failed_backup`) → restart → health
 * check → level 3 the emergency configuration (`migration.emergency.set`; default: the old backend only, dual write
 * off, cut-over 0, phase primary-only) → restart → health check → escalate to people. It stops at the first level
 * after which the service is healthy and says which (result, status, evidence). Each level has its own approval
 * (`migration.emergency.levels`: `automatic`, or a policy tightened by the input's approval) with its own plan.
 *
 * Undo: on a failure, rejection, timeout, abort or cancel, what the levels changed is undone newest first — the
 * emergency values written back while the store still holds them, then the configuration as found put back byte
 * for byte from failed_backup while the store still holds the last known good — each followed by a restart, so
 * what runs is what the configuration says. When nothing helped, the run ends `escalated` and KEEPS the
 * configuration it reached (the emergency configuration): the people who take over get the most conservative
 * state the environment defines rather than one known to be broken; the failed_backup and the last known good stay
 * on disk beside it, and the evidence records each kept change with why.
 */
export async function emergencyLadder(rawInput: EmergencyLadderInput): Promise<RunbookResult> {
  const input = parseRunbookInput(emergencyLadderInputSchema, rawInput);
  const ref = { environment: input.environment, target: input.target };
  const startLevel = input.startLevel as LadderLevel;
  const rb = new Runbook<LadderStep>({
    runbook: 'emergency-ladder',
    environment: input.environment,
    target: input.target,
    requester: input.requester,
    reason: input.reason,
    dryRun: input.dryRun,
    steps: EMERGENCY_LADDER_STEPS,
    lockWait: input.lockWait,
  });
  const levels: LevelReport[] = [];
  let healthyAfter: LadderLevel | null = null;
  let escalatedTo: string[] | undefined;
  let failedBackup: { file: string; digest: string } | undefined;
  let facts: LadderFacts | undefined;

  const report = (): Record<string, unknown> => ({
    startLevel,
    healthyAfter,
    outcome:
      healthyAfter !== null
        ? `healthy after level ${healthyAfter} (${LEVEL_NAMES[healthyAfter]})`
        : escalatedTo
          ? 'nothing helped: escalated to people, the emergency configuration left in place'
          : 'not finished',
    levels,
    ...(failedBackup ? { failedBackup } : {}),
    ...(facts?.lastKnownGood ? { lastKnownGood: facts.lastKnownGood } : {}),
    ...(escalatedTo ? { escalatedTo } : {}),
  });
  const publish = (): void => rb.publish('ladder', report());

  return rb.run(
    async () => {
      const target = await rb.step('load environment', () => acts.describeMigrationTarget(ref), {
        summarize: (t) => `${t.configStore}; services ${Object.keys(t.services).join(', ')}`,
      });
      rb.usePolicy(tightenApproval(target.approval, input.approval), target.escalation);
      const found = await rb.step(
        'read configuration',
        async () => ({ config: await acts.readConfig(ref), lkg: await acts.describeEmergency(ref) }),
        {
          summarize: ({ config, lkg }) =>
            `phase ${config.phase.phase}; last known good ${lkg.lastKnownGood ? `${lkg.lastKnownGood.digest.slice(0, 12)} (${lkg.lastKnownGood.at})` : 'none'}`,
        },
      );
      const f: LadderFacts = {
        environment: input.environment,
        target: input.target,
        startLevel,
        services: Object.keys(target.services),
        policies: levelPolicies(target, found.lkg.levels, input.approval),
        current: found.config.values,
        currentDigest: found.lkg.currentDigest,
        emergency: emergencyValues(target),
        lastKnownGood: found.lkg.lastKnownGood,
        ...(found.lkg.lastKnownGoodProblem ? { lastKnownGoodProblem: found.lkg.lastKnownGoodProblem } : {}),
        configStore: target.configStore,
      };
      facts = f;
      await rb.seal(ladderPlan(f));

      for (const level of LADDER_LEVELS) {
        if (level < startLevel) {
          skipLevel(level, `the run started at level ${startLevel}`);
          continue;
        }
        const why = level === 2 ? level2Skip(f) : undefined;
        if (why) {
          skipLevel(level, why);
          continue;
        }
        const entry: LevelReport = { level, action: LEVEL_NAMES[level] };
        levels.push(entry);
        if (await climb(level, f, entry, target.emergency.healthWithin)) {
          healthyAfter = level;
          publish();
          return;
        }
        publish();
      }

      const tried = levels.map((l) => `L${l.level} ${l.action}: ${l.skipped ?? l.problem ?? 'unhealthy'}`);
      const notices = await rb.step(
        'escalate to people',
        () =>
          rb.escalateToPeople(
            'emergency ladder exhausted: the service is still unhealthy',
            `tried:\n${tried.map((t) => `- ${t}`).join('\n')}\nleft in place: the emergency configuration ` +
              `(${Object.entries(f.emergency)
                .map(([k, v]) => `${k}=${v}`)
                .join(', ')})` +
              (failedBackup ? `; the configuration as found is ${failedBackup.file}` : ''),
          ),
        {
          summarize: (n) =>
            `notified ${n.filter((x) => x.delivered).length}/${n.length}: ${n.map((x) => `${x.contact ?? `L${x.level}`}${x.delivered ? '' : ' (NOT delivered)'}`).join(', ')}`,
        },
      );
      escalatedTo = notices.map((n) => n.contact ?? `level ${n.level}`);
      publish();
      const climbed = levels.filter((l) => !l.skipped).map((l) => l.level);
      rb.handOver(
        `nothing helped: the service is still unhealthy after levels ${climbed.join(', ')}; escalated to ` +
          (escalatedTo.join(', ') || 'nobody: the environment lists no escalation levels'),
        'the ladder escalated to people: the emergency configuration is the safest state to hand over',
      );
    },
    // servicesAffected also fills `runbook report --postmortem`
    () => ({
      ladder: report(),
      ...(facts ? { servicesAffected: facts.services.map((s) => `${input.environment}/${input.target}: ${s}`) } : {}),
    }),
  );

  function skipLevel(level: LadderLevel, why: string): void {
    levels.push({ level, action: LEVEL_NAMES[level], skipped: why });
    for (const step of Object.values(LEVEL_STEPS[level])) rb.skip(step, why);
  }

  /** One level: its approval stage, its change, restart, health. True when the service is healthy after it. */
  async function climb(level: LadderLevel, f: LadderFacts, entry: LevelReport, within: string): Promise<boolean> {
    const steps = LEVEL_STEPS[level];
    if (level === 3) {
      const now = await rb.step(LEVEL_STEPS[3].read, () => acts.readConfig(ref), {
        summarize: (c) => `phase ${c.phase.phase}`,
      });
      f.current = now.values;
    }
    await rb.stageApproval(steps.approval, levelPlan(level, f), f.policies[level]);
    const stage = rb.state.approval.stages?.find((s) => s.stage === steps.approval);
    entry.approval = stage?.status === 'approved' ? `approved by ${stage.approvedBy.join(', ')}` : 'automatic';
    if (level === 2) await restoreLastKnownGood(f);
    if (level === 3) await setEmergencyConfiguration(f);
    await rb.step(steps.restart, () => acts.restartServices({ ...ref, action: 'restart' }), {
      summarize: (s) => s.map((x) => `${x.name}: ${x.state}`).join('; '),
    });
    const health = await rb.step(steps.health, () => checkHealth(within), {
      summarize: (h) => (h.healthy ? `healthy (${h.detail})` : `UNHEALTHY: ${h.detail}`),
    });
    entry.healthy = health.healthy;
    if (!health.healthy) entry.problem = health.detail;
    return health.healthy;
  }

  async function restoreLastKnownGood(f: LadderFacts): Promise<void> {
    const lkg = f.lastKnownGood!;
    const restored = await rb.step(
      LEVEL_STEPS[2].change,
      () => acts.restoreLastKnownGood({ ...ref, expectDigest: lkg.digest }),
      {
        // registered before it acts (a cancel may land while it writes): when the store holds the last known good
        // (which the configuration as found was not), the configuration as found goes back from failed_backup,
        // byte for byte, and the services restart; when it does not, this run changed nothing to undo
        undoBefore: async () => {
          const now = await undo.describeEmergency(ref);
          if (now.currentDigest !== lkg.digest) return;
          const back = await undo.putBackFailedBackup({ ...ref, replacedDigest: f.currentDigest });
          if (back.changed) await undo.restartServices({ ...ref, action: 'restart' });
        },
        summarize: (r) =>
          `${r.changed ? 'restored' : 'already'} ${r.restoredDigest.slice(0, 12)}; the configuration as found is ${r.failedBackup ?? '(unchanged)'} (${r.replacedDigest.slice(0, 12)})`,
      },
    );
    if (restored.failedBackup) failedBackup = { file: restored.failedBackup, digest: restored.replacedDigest };
  }

  async function setEmergencyConfiguration(f: LadderFacts): Promise<void> {
    const previous = Object.fromEntries(Object.keys(f.emergency).map((k) => [k, f.current[k] ?? null]));
    await rb.step(
      LEVEL_STEPS[3].change,
      () => acts.writeConfig({ ...ref, values: f.emergency, expectCurrent: previous }),
      {
        undoBefore: async () => {
          const back = await undo.writeConfig({ ...ref, values: previous, onlyIfCurrent: f.emergency });
          if (back.changed) await undo.restartServices({ ...ref, action: 'restart' });
        },
        summarize: (r) =>
          `${r.changed ? 'set' : 'already set'}: ${Object.entries(f.emergency)
            .map(([k, v]) => `${k}=${v}`)
            .join(', ')}`,
      },
    );
  }

  /** Healthy or not within the environment's healthWithin; only an unhealthy answer is "not healthy". */
  async function checkHealth(within: string): Promise<{ healthy: boolean; detail: string }> {
    try {
      const ok = await acts.waitMigrationHealthy({ ...ref, within });
      return { healthy: true, detail: `HTTP ${ok.status} after ${ok.ms}ms` };
    } catch (err) {
      const cause = err instanceof ActivityFailure ? err.cause : err;
      if (cause instanceof ApplicationFailure && cause.type === ErrorType.VerificationFailed) {
        return { healthy: false, detail: errorMessage(err) };
      }
      throw err;
    }
  }
}

/** Level 2 does not apply without a last known good configuration, or when it is what the store holds already. */
function level2Skip(f: LadderFacts): string | undefined {
  if (!f.lastKnownGood) return `no last known good configuration to use: ${f.lastKnownGoodProblem ?? 'none saved'}`;
  if (f.lastKnownGood.digest === f.currentDigest) return 'the configuration is the last known good already';
  return undefined;
}
