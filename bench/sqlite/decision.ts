/** How section 4 chooses the backup configuration (the schema's defaults of `backups.method` and `backups.compression`). */
import { sqliteTargetSchema } from '../../src/shared/schemas.js';
import { median } from '../engine/format.js';
import { mergePauses, type Pauses } from './probe.js';
import type { CopyStats } from './report.js';
import type { PhasedRun } from './runs.js';
import { DECISION_MARGIN, GOALS } from './settings.js';
import type { BackupConfig } from './world.js';

export interface Decision {
  chosen: BackupConfig;
  schemaDefault: BackupConfig;
  /** per configuration of the activities: median total, pauses of its runs, and what makes it eligible */
  configs: Array<{
    config: BackupConfig;
    medianMs: number;
    pause: Pauses;
    withinPauseGoal: boolean;
    /** its method's copy keeps the database's journal mode (copy alone) */
    keepsWal: boolean;
  }>;
  /** why the chosen one */
  reason: string;
}

const sameConfig = (a: BackupConfig, b: BackupConfig) => a.method === b.method && a.compression === b.compression;
export const configText = (c: BackupConfig): string =>
  `\`backups.method: ${c.method}\`, \`backups.compression: ${c.compression}\``;

/**
 * The configuration the benchmark chooses: of the activities' configurations whose own pauses (less the wait for
 * a CPU) are within the goal and whose backup keeps the database's journal mode (VACUUM INTO writes a
 * rollback-journal database: restored, a WAL application would silently run without WAL), the fastest by median
 * end-to-end time — unless the schema's default is among them and the fastest beats it by no more than
 * DECISION_MARGIN (then the default stays: the difference is noise).
 */
export function decide(runs: PhasedRun[], copies: CopyStats[], schemaDefault: BackupConfig): Decision {
  const configs: Decision['configs'] = [];
  for (const r of runs) {
    if (!r.config || configs.some((c) => sameConfig(c.config, r.config!))) continue;
    const mine = runs.filter((x) => x.config && sameConfig(x.config, r.config!));
    const pause = mergePauses(mine.map((x) => x.pause));
    configs.push({
      config: r.config,
      medianMs: median(mine.map((x) => x.totalMs)),
      pause,
      withinPauseGoal: pause.ownMs < GOALS.pauseMs,
      keepsWal: copies.find((c) => c.method.id === r.config!.method)?.keepsWal ?? false,
    });
  }
  const ok = (c: (typeof configs)[number]) => c.withinPauseGoal && c.keepsWal;
  const eligible = configs.some(ok) ? configs.filter(ok) : configs;
  const byTime = (list: typeof configs) => [...list].sort((a, b) => a.medianMs - b.medianMs)[0]!;
  const fastest = byTime(eligible);
  const current = eligible.find((c) => sameConfig(c.config, schemaDefault));
  const faster = (c: (typeof configs)[number], than: (typeof configs)[number]) =>
    `${((100 * (than.medianMs - c.medianMs)) / than.medianMs).toFixed(0)} %`;
  const keep = current && fastest !== current && fastest.medianMs >= current.medianMs * (1 - DECISION_MARGIN);
  const chosen = keep ? current : fastest;
  const reasons = [
    keep
      ? `the fastest eligible, ${configText(fastest.config)}, beat the current default by ${faster(fastest, current)} only (within the ${100 * DECISION_MARGIN} % margin): the default stays`
      : current && chosen !== current
        ? `the fastest end to end of the eligible configurations, ${faster(chosen, current)} faster than the current default`
        : 'the fastest end to end of the eligible configurations',
  ];
  const quickest = byTime(
    configs.filter((c) => c.withinPauseGoal).length ? configs.filter((c) => c.withinPauseGoal) : configs,
  );
  if (!quickest.keepsWal && quickest.medianMs < chosen.medianMs)
    reasons.push(
      `${configText(quickest.config)} was ${faster(quickest, chosen)} faster than the chosen one, but its backup is a rollback-journal database (not chosen while a restore does not set WAL mode again)`,
    );
  return { chosen: chosen.config, schemaDefault, configs, reason: reasons.join('; ') };
}

/** The schema's defaults of `backups.method` and `backups.compression`. */
export function schemaDefault(): BackupConfig {
  const { method, compression } = sqliteTargetSchema.parse({ path: 'x.db', backups: { dir: 'backups' } }).backups;
  return { method, compression };
}
