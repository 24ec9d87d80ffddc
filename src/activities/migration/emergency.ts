import type { Logger } from 'pino';
import type { ApprovalPolicy } from '../../shared/types.js';
import type { CommandRunner } from '../adapters/types.js';
import { sha256 } from '../digest.js';
import { readKeyLine, withEnvironmentErrors } from '../environment.js';
import { keyIdOf } from '../keys.js';
import { LastKnownGoodFiles, type LastKnownGood } from './last-known-good.js';
import { loadMigrationTarget, type MigrationTarget, type TargetRef } from './target.js';

// What the emergency ladder reads before it acts: each level's approval policy as the workflow judges decisions
// with (keys resolved, like the environment's own policy), the last known good configuration and the digest of
// the configuration as found (what failed_backup will hold).

type LevelName = 'restart' | 'lastKnownGood' | 'emergencyConfig';
export type EmergencyLevelPolicies = Partial<Record<LevelName, ApprovalPolicy | 'automatic'>>;

export interface EmergencyFacts {
  /** absent levels follow the environment's approval policy (the ladder decides) */
  levels: EmergencyLevelPolicies;
  lastKnownGood: LastKnownGood | null;
  /** why there is none to use (missing, or its bytes no longer match its recorded digest) */
  lastKnownGoodProblem?: string;
  /** sha256 of the store's whole content now */
  currentDigest: string;
}

export const createEmergencyActivities = (deps: { environmentsDir: string; log: Logger; runner?: CommandRunner }) => ({
  /** Read-only: the ladder's facts (a dry run calls it). */
  async describeEmergency(ref: TargetRef): Promise<EmergencyFacts> {
    const x = await loadMigrationTarget(deps.environmentsDir, ref, deps.runner);
    const levels = await withEnvironmentErrors(() => levelPolicies(x));
    const files = new LastKnownGoodFiles(
      x.t.resolvePath(x.m.lastKnownGood.dir),
      `${ref.environment}.${ref.target}`,
      x.store,
    );
    const currentDigest = sha256(await x.store.snapshot());
    try {
      const { content: _, ...lastKnownGood } = await files.read();
      return { levels, lastKnownGood, currentDigest };
    } catch (err) {
      return { levels, lastKnownGood: null, lastKnownGoodProblem: (err as Error).message, currentDigest };
    }
  },
});

async function levelPolicies(x: MigrationTarget): Promise<EmergencyLevelPolicies> {
  const out: EmergencyLevelPolicies = {};
  for (const [name, level] of Object.entries(x.m.emergency.levels) as Array<[LevelName, unknown]>) {
    if (level === undefined) continue;
    if (level === 'automatic') {
      out[name] = 'automatic';
      continue;
    }
    const { keys, ...policy } = level as Exclude<(typeof x.m.emergency.levels)[LevelName], 'automatic' | undefined>;
    const resolved = [];
    for (const k of keys) {
      const publicKey =
        k.publicKey ??
        (await readKeyLine(
          x.t.file,
          `targets.${x.t.targetName}.migration.emergency.levels.${name}: ${k.name}'s keyFile`,
          x.t.resolvePath(k.keyFile!),
        ));
      resolved.push({ name: k.name, publicKey, keyId: keyIdOf(publicKey) });
    }
    out[name] = { ...policy, keys: resolved };
  }
  return out;
}

export type EmergencyActivities = ReturnType<typeof createEmergencyActivities>;
