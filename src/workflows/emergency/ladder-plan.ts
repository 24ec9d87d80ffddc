import type { EmergencyLevelPolicies } from '../../activities/migration/emergency.js';
import type { MigrationTargetDescription } from '../../activities/migration/index.js';
import type { LastKnownGood } from '../../activities/migration/last-known-good.js';
import type { ConfigValues } from '../../activities/migration/types.js';
import { tightenApproval } from '../../shared/input.js';
import type { ApprovalPolicy, Plan, PlanChange } from '../../shared/types.js';

// The emergency ladder's levels, their approval policies and plans (pure: no Temporal APIs).

export const LADDER_LEVELS = [1, 2, 3] as const;
export type LadderLevel = (typeof LADDER_LEVELS)[number];

export const LEVEL_NAMES: Record<LadderLevel, string> = {
  1: 'restart',
  2: 'last known good configuration',
  3: 'emergency configuration',
};

/** The declared steps of one level, by level: the approval stage, the change (levels 2, 3), restart, health. */
export const LEVEL_STEPS = {
  1: { approval: 'level 1 approval', restart: 'level 1 restart', health: 'level 1 health check' },
  2: {
    approval: 'level 2 approval',
    change: 'level 2 restore last known good',
    restart: 'level 2 restart',
    health: 'level 2 health check',
  },
  3: {
    read: 'level 3 read configuration',
    approval: 'level 3 approval',
    change: 'level 3 set emergency configuration',
    restart: 'level 3 restart',
    health: 'level 3 health check',
  },
} as const;

export type LevelPolicy = ApprovalPolicy | 'automatic';

/**
 * Each level's approval: the environment's `migration.emergency.levels` (level 1 defaults to automatic; levels 2
 * and 3, which change the configuration, default to the environment's approval policy), tightened by the input's
 * approval like every gate. A looser input is InvalidInput naming the field, before anything changes.
 */
export function levelPolicies(
  target: MigrationTargetDescription,
  levels: EmergencyLevelPolicies,
  input: { quorum?: number; timeout?: string } | undefined,
): Record<LadderLevel, LevelPolicy> {
  const tighten = (p: LevelPolicy | undefined): LevelPolicy =>
    p === 'automatic' ? 'automatic' : tightenApproval(p ?? target.approval, input);
  return { 1: tighten(levels.restart), 2: tighten(levels.lastKnownGood), 3: tighten(levels.emergencyConfig) };
}

/** Level 3's configuration: the environment's `emergency.set`, else the seed's (old backend only, primary-only). */
export function emergencyValues(target: MigrationTargetDescription): ConfigValues {
  if (target.emergency.set) return target.emergency.set;
  const { keys, backends } = target;
  return {
    [keys.primary]: backends.old,
    [keys.dualWrite]: 'false',
    [keys.cutoverPercent]: '0',
    ...(keys.phase ? { [keys.phase]: 'primary-only' } : {}),
  };
}

export const policyLabel = (p: LevelPolicy): string =>
  p === 'automatic'
    ? 'automatic'
    : `approval: ${p.quorum} of ${p.approvers.join(', ') || 'anyone'}${p.requireSignatures ? ', signed' : ''}`;

export const changesTo = (from: ConfigValues, to: ConfigValues): PlanChange[] =>
  Object.entries(to)
    .filter(([k, v]) => from[k] !== v)
    .map(([item, value]) => ({ item, from: from[item] ?? null, to: value }));

export interface LadderFacts {
  environment: string;
  target: string;
  startLevel: LadderLevel;
  services: string[];
  policies: Record<LadderLevel, LevelPolicy>;
  current: ConfigValues;
  /** sha256 of the store's whole content as found (what failed_backup will hold) */
  currentDigest: string;
  emergency: ConfigValues;
  lastKnownGood: LastKnownGood | null;
  /** why there is no last known good to use */
  lastKnownGoodProblem?: string;
  configStore: string;
}

/** The ladder's own plan, sealed first (a dry run ends with it): every level it may climb, and how each is approved. */
export function ladderPlan(f: LadderFacts): Plan {
  const levels = LADDER_LEVELS.filter((l) => l >= f.startLevel);
  return {
    summary:
      `emergency ladder for ${f.environment}/${f.target} from level ${f.startLevel}: ` +
      levels.map((l) => `L${l} ${LEVEL_NAMES[l]} (${policyLabel(f.policies[l])})`).join(' → ') +
      ' → escalate to people; it stops at the first level after which the service is healthy',
    changes: [
      ...(f.startLevel <= 2 && f.lastKnownGood ? [lastKnownGoodChange(f)] : []),
      ...changesTo(f.current, f.emergency).map((c) => ({ ...c, item: `level 3: ${c.item}` })),
    ],
    details: {
      startLevel: f.startLevel,
      services: f.services,
      configStore: f.configStore,
      levels: levels.map((l) => ({ level: l, action: LEVEL_NAMES[l], approval: policyLabel(f.policies[l]) })),
      lastKnownGood: f.lastKnownGood
        ? { file: f.lastKnownGood.file, digest: f.lastKnownGood.digest, at: f.lastKnownGood.at }
        : null,
      emergency: f.emergency,
    },
  };
}

const lastKnownGoodChange = (f: LadderFacts): PlanChange => ({
  item: `level 2: ${f.configStore}`,
  from: `the configuration as found ${f.currentDigest.slice(0, 12)} (kept as failed_backup)`,
  to: `last known good ${f.lastKnownGood!.digest.slice(0, 12)} (saved ${f.lastKnownGood!.at})`,
});

/** The plan of one level's approval stage. */
export function levelPlan(level: LadderLevel, f: LadderFacts): Plan {
  const services = f.services.join(', ');
  if (level === 1) {
    return { summary: `level 1: restart ${services}, then check health`, changes: [], details: { services } };
  }
  if (level === 2) {
    return {
      summary:
        `level 2: keep the current configuration of ${f.configStore} as failed_backup, put the last known good ` +
        `configuration back, restart ${services}, then check health`,
      changes: [lastKnownGoodChange(f)],
      details: { lastKnownGood: f.lastKnownGood, services },
    };
  }
  return {
    summary: `level 3: set the emergency configuration in ${f.configStore}, restart ${services}, then check health`,
    changes: changesTo(f.current, f.emergency),
    details: { emergency: f.emergency, services },
  };
}
