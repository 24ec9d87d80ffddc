import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Logger } from 'pino';
import { setTimeout as delay } from 'node:timers/promises';
import { flagStoreFor, logSourceFor, serviceFor } from './adapters/index.js';
import { pollHttp } from './health.js';
import type { CommandRunner, FlagValues } from './adapters/types.js';
import {
  approvalPolicyOf,
  loadTarget,
  requireSection,
  withEnvironmentErrors,
  type LoadedTarget,
} from './environment.js';
import { ErrorType } from '../shared/constants.js';
import { parseDuration } from '../shared/duration.js';
import type { ApprovalPolicy, EscalationLevel } from '../shared/types.js';
import type { FlagKey } from '../shared/schemas.js';

export interface FlagActivityDeps {
  environmentsDir: string;
  log: Logger;
  runner?: CommandRunner;
}

export interface TargetRef {
  environment: string;
  target: string;
}

/** What the workflow learns about a target: names and policies, never credentials. */
export interface TargetDescription {
  environmentFile: string;
  flagStore: string;
  service: string;
  serviceType: string;
  flagNames: Record<FlagKey, string>;
  approval: ApprovalPolicy;
  escalation: EscalationLevel[];
  quietWindow: string;
  logs?: string;
  logPattern: string;
  flagsUrl?: string;
  healthUrl: string;
}

/** waitForLogQuiet fails when no quiet window was seen within this many windows */
export const QUIET_GIVE_UP_WINDOWS = 5;

const verificationFailed = (message: string) => ApplicationFailure.nonRetryable(message, ErrorType.VerificationFailed);

export const createFlagActivities = (deps: FlagActivityDeps) => {
  const target = (ref: TargetRef): Promise<LoadedTarget> =>
    withEnvironmentErrors(async () => {
      const t = await loadTarget(deps.environmentsDir, ref.environment, ref.target);
      requireSection(t, 'flags');
      requireSection(t, 'service');
      requireSection(t, 'health');
      return t;
    });
  const health = (t: LoadedTarget) => t.target.health!;

  return {
    async describeTarget(ref: TargetRef): Promise<TargetDescription> {
      const t = await target(ref);
      const logs = logSourceFor(t, deps.runner);
      return {
        environmentFile: t.file,
        flagStore: flagStoreFor(t, deps.runner).describe(),
        service: serviceFor(t, deps.runner).describe(),
        serviceType: t.target.service!.type,
        flagNames: t.target.flags!.names,
        approval: approvalPolicyOf(t),
        escalation: t.config.escalation,
        quietWindow: health(t).quietWindow,
        logs: logs?.describe(),
        logPattern: health(t).logPattern,
        flagsUrl: health(t).flagsUrl,
        healthUrl: health(t).http.url,
      };
    },

    async readFlags(ref: TargetRef & { names: string[] }): Promise<FlagValues> {
      const t = await target(ref);
      return flagStoreFor(t, deps.runner).read(ref.names);
    },

    /**
     * Idempotent: writing values that are already set changes nothing. Returns the values it replaced.
     * `expectCurrent`: the plan's "from" values; a flag that is neither that nor the target value means someone
     * changed it since the plan (PlanStale, nothing written). `onlyIfCurrent` (undos): write a flag only while it
     * still holds this value — an undo puts back what the run changed, never what someone else set meanwhile.
     */
    async writeFlags(
      ref: TargetRef & { values: FlagValues; expectCurrent?: FlagValues; onlyIfCurrent?: FlagValues },
    ): Promise<{ changed: boolean; before: FlagValues; skipped?: string[] }> {
      const t = await target(ref);
      const store = flagStoreFor(t, deps.runner);
      const before = await store.read(Object.keys(ref.values));
      if (ref.expectCurrent) {
        // the approved plan said "from X to Y": anything else means someone changed the flags since the plan
        const stale = Object.keys(ref.values).filter(
          (k) => before[k] !== ref.values[k] && before[k] !== ref.expectCurrent![k],
        );
        if (stale.length) {
          throw ApplicationFailure.nonRetryable(
            `flags changed since the plan was approved: ${stale.map((k) => `${k}=${String(before[k])} (plan: ${String(ref.expectCurrent![k])})`).join(', ')}`,
            ErrorType.PlanStale,
          );
        }
      }
      let values = ref.values;
      let skipped: string[] | undefined;
      if (ref.onlyIfCurrent) {
        const only = ref.onlyIfCurrent;
        skipped = Object.keys(values).filter((k) => k in only && before[k] !== only[k] && before[k] !== values[k]);
        values = Object.fromEntries(Object.entries(values).filter(([k]) => !skipped!.includes(k)));
        if (skipped.length)
          deps.log.warn(
            { target: `${ref.environment}/${ref.target}`, skipped },
            'flags changed by someone else: left as they are',
          );
      }
      const { changed } = Object.keys(values).length ? await store.write(values) : { changed: false };
      deps.log.info({ target: `${ref.environment}/${ref.target}`, values, changed }, 'flags written');
      return { changed, before, ...(skipped?.length ? { skipped } : {}) };
    },

    async reloadService(
      ref: TargetRef & { action: 'reload' | 'restart' },
    ): Promise<{ service: string; state: string }> {
      const t = await target(ref);
      const service = serviceFor(t, deps.runner);
      if (ref.action === 'restart') await service.restart();
      else await service.reload();
      const state = await service.status();
      if (!state.running) throw new Error(`${service.describe()} is not running after ${ref.action}`);
      deps.log.info({ target: `${ref.environment}/${ref.target}`, action: ref.action }, 'service reloaded');
      return { service: service.describe(), state: state.detail };
    },

    /** Reads the flags back from the store and from the service's own endpoint until both show `expected`. */
    async verifyFlagsLive(
      ref: TargetRef & { expected: FlagValues },
    ): Promise<{ store: FlagValues; service?: FlagValues }> {
      const t = await target(ref);
      const stored = await flagStoreFor(t, deps.runner).read(Object.keys(ref.expected));
      const wrongInStore = Object.entries(ref.expected).filter(([k, v]) => stored[k] !== v);
      if (wrongInStore.length) {
        throw verificationFailed(
          `flag store still has ${wrongInStore.map(([k]) => `${k}=${String(stored[k])}`).join(', ')}`,
        );
      }
      const url = health(t).flagsUrl;
      if (!url) return { store: stored };
      const deadline = Date.now() + parseDuration(health(t).http.within);
      let live: FlagValues = {};
      let problem = '';
      while (Date.now() < deadline) {
        Context.current().heartbeat();
        try {
          const response = await fetch(url, { signal: AbortSignal.timeout(parseDuration(health(t).http.timeout)) });
          const body = (await response.json()) as Record<string, unknown>;
          live = Object.fromEntries(
            Object.keys(ref.expected).map((k) => [
              k,
              body[k] === undefined || body[k] === null ? null : String(body[k]),
            ]),
          );
          const wrong = Object.entries(ref.expected).filter(([k, v]) => live[k] !== v);
          if (response.ok && wrong.length === 0) return { store: stored, service: live };
          problem = `service reports ${wrong.map(([k]) => `${k}=${String(live[k])}`).join(', ')} (HTTP ${response.status})`;
        } catch (err) {
          problem = `${url}: ${(err as Error).message}`;
        }
        await delay(250);
      }
      throw verificationFailed(`flags not live after ${health(t).http.within}: ${problem}`);
    },

    /** Polls the health endpoint until it answers as expected, within the target's `within` window. */
    async checkHealth(ref: TargetRef): Promise<{ status: number; url: string }> {
      const t = await target(ref);
      const { status, url } = await pollHttp(health(t).http);
      return { status, url };
    },

    /**
     * Waits until the log shows no new matching lines for a whole `window`. Heartbeats its cursor, so a retry
     * on another worker continues the same window instead of starting over. Gives up after 5 windows.
     */
    async waitForLogQuiet(ref: TargetRef & { window: string }): Promise<{ quietForMs: number; linesSeen: number }> {
      const t = await target(ref);
      const source = logSourceFor(t, deps.runner);
      if (!source)
        throw ApplicationFailure.nonRetryable(
          `${t.file}: targets.${ref.target}.health.logs: not configured`,
          ErrorType.EnvironmentInvalid,
        );
      const pattern = new RegExp(health(t).logPattern);
      const windowMs = parseDuration(ref.window);
      const ctx = Context.current();
      type Progress = { cursor: string; quietSince: number; startedAt: number; linesSeen: number };
      const resumed = ctx.info.heartbeatDetails as Progress | undefined;
      const progress: Progress = resumed ?? {
        cursor: await source.cursor(),
        quietSince: Date.now(),
        startedAt: Date.now(),
        linesSeen: 0,
      };
      const giveUpAt = progress.startedAt + QUIET_GIVE_UP_WINDOWS * windowMs;
      for (;;) {
        ctx.heartbeat(progress);
        const matches = await source.matchesSince(progress.cursor, pattern);
        if (matches.count > 0) {
          progress.linesSeen += matches.count;
          progress.cursor = await source.cursor();
          progress.quietSince = Date.now();
          if (Date.now() >= giveUpAt) {
            throw verificationFailed(
              `${source.describe()} still shows "${health(t).logPattern}" lines after ${QUIET_GIVE_UP_WINDOWS}×${ref.window}: ${matches.sample.join(' | ')}`,
            );
          }
        } else if (Date.now() - progress.quietSince >= windowMs) {
          return { quietForMs: Date.now() - progress.quietSince, linesSeen: progress.linesSeen };
        }
        await ctx.sleep(Math.min(1000, windowMs / 4));
      }
    },

    /**
     * Re-enabling dual write: the soak watches health for a whole `window` (any miss fails it: SoakFailed) and then
     * waits for dual writes to happen again (a new matching log line within QUIET_GIVE_UP_WINDOWS windows).
     * Heartbeats its progress, so a retry continues where it was.
     */
    async soakDualWrites(
      ref: TargetRef & { window: string },
    ): Promise<{ healthyForMs: number; checks: number; dualWritesSeen: number }> {
      const t = await target(ref);
      const source = logSourceFor(t, deps.runner);
      const pattern = new RegExp(health(t).logPattern);
      const windowMs = parseDuration(ref.window);
      const ctx = Context.current();
      type Progress = { cursor?: string; startedAt: number; checks: number; dualWritesSeen: number };
      const progress: Progress = (ctx.info.heartbeatDetails as Progress | undefined) ?? {
        cursor: await source?.cursor(),
        startedAt: Date.now(),
        checks: 0,
        dualWritesSeen: 0,
      };
      const giveUpAt = progress.startedAt + QUIET_GIVE_UP_WINDOWS * windowMs;
      for (;;) {
        ctx.heartbeat(progress);
        try {
          await pollHttp({ ...health(t).http, within: '0s' });
        } catch (err) {
          throw ApplicationFailure.nonRetryable(
            `soak: unhealthy after ${progress.checks} good checks: ${(err as Error).message}`,
            ErrorType.SoakFailed,
          );
        }
        progress.checks++;
        if (source && progress.cursor !== undefined)
          progress.dualWritesSeen += (await source.matchesSince(progress.cursor, pattern)).count;
        const soaked = Date.now() - progress.startedAt >= windowMs;
        if (soaked && (!source || progress.dualWritesSeen > 0))
          return {
            healthyForMs: Date.now() - progress.startedAt,
            checks: progress.checks,
            dualWritesSeen: progress.dualWritesSeen,
          };
        if (Date.now() >= giveUpAt)
          throw ApplicationFailure.nonRetryable(
            `soak: no "${health(t).logPattern}" line in ${source!.describe()} within ${QUIET_GIVE_UP_WINDOWS}×${ref.window}: dual writes did not resume`,
            ErrorType.SoakFailed,
          );
        await ctx.sleep(Math.min(1000, windowMs / 4));
      }
    },
  };
};
