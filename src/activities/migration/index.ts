import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Logger } from 'pino';
import { ErrorType } from '../../shared/constants.js';
import { parseDuration } from '../../shared/duration.js';
import { migrationKeyNames, phaseOf, type PhaseState } from '../../shared/migration.js';
import type { CheckpointConfig, MigrationPhase, MigrationTargetConfig } from '../../shared/schemas.js';
import type { ApprovalPolicy, EscalationLevel } from '../../shared/types.js';
import type { CommandRunner } from '../adapters/types.js';
import { approvalPolicyOf } from '../environment.js';
import { pollHttp } from '../health.js';
import { LastKnownGoodFiles, type LastKnownGood } from './last-known-good.js';
import { linesSince, logFiles, type LogOffsets } from './logs.js';
import {
  backendCounters,
  parsePrometheusText,
  windowOf,
  type BackendWindow,
  type MetricsSnapshot,
} from './prometheus.js';
import { loadMigrationTarget, type MigrationTarget, type TargetRef } from './target.js';
import type { ConfigValues } from './types.js';

export type { MetricsSnapshot, BackendWindow } from './prometheus.js';
export type { LogOffsets } from './logs.js';

export interface MigrationActivityDeps {
  environmentsDir: string;
  log: Logger;
  runner?: CommandRunner;
}

/** What a workflow learns about a migration target: names, policies, phases, checkpoints, soak — no credentials. */
export interface MigrationTargetDescription {
  environmentFile: string;
  configStore: string;
  keys: MigrationTargetConfig['keys'];
  backends: MigrationTargetConfig['backends'];
  cutoverSteps: number[];
  /** service name → what it is */
  services: Record<string, string>;
  approval: ApprovalPolicy;
  escalation: EscalationLevel[];
  soak: MigrationTargetConfig['soak'];
  checkpoints: Record<string, CheckpointConfig>;
  rollbackCheckpoints: Partial<Record<MigrationPhase, string>>;
  endpoints: MigrationTargetConfig['endpoints'];
  replay: MigrationTargetConfig['replay'];
  emergency: MigrationTargetConfig['emergency'];
  jobs: string;
  logs: string;
  lastKnownGood: string;
}

export interface SoakLook {
  healthy: boolean;
  /** the health endpoint's answer when it was not healthy */
  healthProblem?: string;
  /** per backend, over the window so far */
  backends: Record<string, BackendWindow>;
  /** thresholds crossed: "parquet: error rate 0.50 > 0.05 (4 of 8 jobs)" */
  breaches: string[];
  at: number;
}

const nonRetryable = (message: string, type: string) => ApplicationFailure.nonRetryable(message, type);

export const createMigrationActivities = (deps: MigrationActivityDeps) => {
  const load = (ref: TargetRef): Promise<MigrationTarget> =>
    loadMigrationTarget(deps.environmentsDir, ref, deps.runner);
  const lkg = (x: MigrationTarget, ref: TargetRef) =>
    new LastKnownGoodFiles(x.t.resolvePath(x.m.lastKnownGood.dir), `${ref.environment}.${ref.target}`, x.store);
  const label = (ref: TargetRef) => `${ref.environment}/${ref.target}`;

  async function readMetricsOf(x: MigrationTarget): Promise<MetricsSnapshot> {
    const url = x.m.endpoints.metrics;
    const response = await fetch(url, { signal: AbortSignal.timeout(parseDuration(x.m.endpoints.timeout)) });
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return { at: Date.now(), backends: backendCounters(parsePrometheusText(await response.text())) };
  }

  return {
    async describeMigrationTarget(ref: TargetRef): Promise<MigrationTargetDescription> {
      const x = await load(ref);
      const { m } = x;
      return {
        environmentFile: x.t.file,
        configStore: x.store.describe(),
        keys: m.keys,
        backends: m.backends,
        cutoverSteps: m.cutoverSteps,
        services: Object.fromEntries(x.services().map((s) => [s.name, s.adapter.describe()])),
        approval: approvalPolicyOf(x.t),
        escalation: x.t.config.escalation,
        soak: m.soak,
        checkpoints: m.checkpoints,
        rollbackCheckpoints: m.rollbackCheckpoints,
        endpoints: m.endpoints,
        replay: m.replay,
        emergency: m.emergency,
        jobs: m.jobs.type === 'spool' ? `spool ${x.t.resolvePath(m.jobs.root)}` : `postgres table ${m.jobs.table}`,
        logs: `${x.t.resolvePath(m.logs.dir)}/${m.logs.pattern}`,
        lastKnownGood: lkg(x, ref).file,
      };
    },

    /** The migration keys (and any other `names`), with the phase they describe. */
    async readConfig(ref: TargetRef & { names?: string[] }): Promise<{ values: ConfigValues; phase: PhaseState }> {
      const x = await load(ref);
      const names = [...new Set([...migrationKeyNames(x.m.keys), ...(ref.names ?? [])])];
      const values = await x.store.read(names);
      return { values, phase: phaseOf(values, x.m) };
    },

    /**
     * Idempotent: values already set change nothing. Returns the values it replaced. `expectCurrent`: the plan's
     * "from" values — a key holding neither that nor the new value was changed by someone since the plan
     * (PlanStale, nothing written). `onlyIfCurrent` (undos): a key is written back only while it still holds this
     * value; what someone else set meanwhile is left alone.
     */
    async writeConfig(
      ref: TargetRef & { values: ConfigValues; expectCurrent?: ConfigValues; onlyIfCurrent?: ConfigValues },
    ): Promise<{ changed: boolean; before: ConfigValues; skipped?: string[] }> {
      const x = await load(ref);
      const before = await x.store.read(Object.keys(ref.values));
      if (ref.expectCurrent) {
        const expect = ref.expectCurrent;
        const stale = Object.keys(ref.values).filter(
          (k) => k in expect && before[k] !== ref.values[k] && before[k] !== expect[k],
        );
        if (stale.length)
          throw nonRetryable(
            `configuration changed since the plan was approved: ${stale.map((k) => `${k}=${String(before[k])} (plan: ${String(expect[k])})`).join(', ')}`,
            ErrorType.PlanStale,
          );
      }
      let values = ref.values;
      let skipped: string[] = [];
      if (ref.onlyIfCurrent) {
        const only = ref.onlyIfCurrent;
        skipped = Object.keys(values).filter((k) => k in only && before[k] !== only[k] && before[k] !== values[k]);
        values = Object.fromEntries(Object.entries(values).filter(([k]) => !skipped.includes(k)));
        if (skipped.length)
          deps.log.warn({ target: label(ref), skipped }, 'configuration changed by someone else: left as it is');
      }
      const { changed } = Object.keys(values).length ? await x.store.write(values) : { changed: false };
      deps.log.info({ target: label(ref), values, changed }, 'configuration written');
      return { changed, before, ...(skipped.length ? { skipped } : {}) };
    },

    async snapshotLastKnownGood(ref: TargetRef): Promise<LastKnownGood> {
      const x = await load(ref);
      const saved = await lkg(x, ref).save();
      deps.log.info({ target: label(ref), digest: saved.digest }, 'last known good configuration saved');
      return saved;
    },

    /** Puts the last known good configuration back; the replaced bytes stay as `<name>.failed_backup`. */
    async restoreLastKnownGood(ref: TargetRef & { expectDigest?: string }) {
      const x = await load(ref);
      const result = await lkg(x, ref).restore(ref.expectDigest);
      deps.log.info({ target: label(ref), ...result }, 'last known good configuration restored');
      return result;
    },

    /** The undo of restoreLastKnownGood: the replaced configuration back, while the store holds the snapshot. */
    async putBackFailedBackup(ref: TargetRef & { replacedDigest: string }) {
      const x = await load(ref);
      const result = await lkg(x, ref).putBack(ref.replacedDigest);
      deps.log.info({ target: label(ref), ...result }, 'configuration before the last known good put back');
      return result;
    },

    /** restart / reload / stop / start the named services (default: all), checking each one's state after. */
    async restartServices(
      ref: TargetRef & { names?: string[]; action: 'restart' | 'reload' | 'stop' | 'start' },
    ): Promise<Array<{ name: string; service: string; state: string }>> {
      const x = await load(ref);
      const out: Array<{ name: string; service: string; state: string }> = [];
      for (const { name, adapter } of x.services(ref.names)) {
        await adapter[ref.action]();
        const state = await adapter.status();
        const want = ref.action !== 'stop';
        if (state.running !== want)
          throw new Error(
            `${adapter.describe()} is ${state.running ? 'still running' : 'not running'} after ${ref.action}`,
          );
        out.push({ name, service: adapter.describe(), state: state.detail });
      }
      deps.log.info({ target: label(ref), action: ref.action, services: out.map((s) => s.name) }, 'services');
      return out;
    },

    /** Polls the health endpoint until it answers 200, within `within` (default: endpoints.within). */
    async waitMigrationHealthy(
      ref: TargetRef & { within?: string },
    ): Promise<{ status: number; url: string; ms: number }> {
      const x = await load(ref);
      const { health, timeout, within } = x.m.endpoints;
      return pollHttp({ url: health, expectStatus: 200, timeout, within: ref.within ?? within });
    },

    async readMetrics(ref: TargetRef): Promise<MetricsSnapshot> {
      return readMetricsOf(await load(ref));
    },

    /**
     * One look of a soak: the health endpoint (one request), and per backend the error rate and mean latency
     * over the window so far (`since`: the metrics snapshot taken when the window started), against
     * `migration.soak`. Rates are judged once a backend saw `minJobs` jobs in the window.
     */
    async soakLook(ref: TargetRef & { since: MetricsSnapshot }): Promise<SoakLook> {
      const x = await load(ref);
      const { soak, endpoints } = x.m;
      let healthProblem: string | undefined;
      try {
        await pollHttp({ url: endpoints.health, expectStatus: 200, timeout: endpoints.timeout, within: '0s' });
      } catch (err) {
        healthProblem = (err as Error).message;
      }
      const now = await readMetricsOf(x);
      const backends = windowOf(ref.since, now);
      const maxLatencyMs = parseDuration(soak.maxLatency);
      const breaches: string[] = [];
      for (const [backend, w] of Object.entries(backends)) {
        if (w.jobs === 0 || w.jobs < soak.minJobs) continue;
        if (w.errorRate > soak.maxErrorRate)
          breaches.push(
            `${backend}: error rate ${w.errorRate.toFixed(2)} > ${soak.maxErrorRate} (${w.failed} of ${w.jobs} jobs)`,
          );
        if (w.meanLatencyMs !== undefined && w.meanLatencyMs > maxLatencyMs)
          breaches.push(`${backend}: mean latency ${w.meanLatencyMs}ms > ${soak.maxLatency} (${w.jobs} jobs)`);
      }
      return { healthy: !healthProblem, ...(healthProblem ? { healthProblem } : {}), backends, breaches, at: now.at };
    },

    /** Where the processing logs are now: lines after this are what waitForLogLine looks at. */
    async migrationLogCursor(ref: TargetRef): Promise<LogOffsets> {
      const x = await load(ref);
      return logFiles(x.t.resolvePath(x.m.logs.dir), x.m.logs.pattern);
    },

    /**
     * Waits for a processing-log line matching `pattern` written after `cursor` (default: where the logs were
     * when this started), within `within`. Heartbeats its cursor and deadline: a retry continues, never restarts.
     */
    async waitForLogLine(
      ref: TargetRef & { pattern: string; within: string; cursor?: LogOffsets },
    ): Promise<{ line: string; ms: number }> {
      const x = await load(ref);
      const dir = x.t.resolvePath(x.m.logs.dir);
      let pattern: RegExp;
      try {
        pattern = new RegExp(ref.pattern);
      } catch (err) {
        throw nonRetryable(
          `log pattern ${JSON.stringify(ref.pattern)}: ${(err as Error).message}`,
          ErrorType.EnvironmentInvalid,
        );
      }
      const ctx = Context.current();
      type Progress = { offsets: LogOffsets; startedAt: number };
      const progress: Progress = (ctx.info.heartbeatDetails as Progress | undefined) ?? {
        offsets: ref.cursor ?? (await logFiles(dir, x.m.logs.pattern)),
        startedAt: Date.now(),
      };
      const deadline = progress.startedAt + parseDuration(ref.within);
      for (;;) {
        ctx.heartbeat(progress);
        const { lines, offsets } = await linesSince(dir, x.m.logs.pattern, progress.offsets);
        const line = lines.find((l) => pattern.test(l));
        if (line) return { line, ms: Date.now() - progress.startedAt };
        progress.offsets = offsets;
        if (Date.now() >= deadline)
          throw nonRetryable(
            `no log line matching "${ref.pattern}" in ${dir}/${x.m.logs.pattern} within ${ref.within}`,
            ErrorType.VerificationFailed,
          );
        await ctx.sleep(Math.min(250, Math.max(deadline - Date.now(), 1)));
      }
    },
  };
};

export type MigrationActivities = ReturnType<typeof createMigrationActivities>;
