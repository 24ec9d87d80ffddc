import { ApplicationFailure } from '@temporalio/common';
import { FileLogSource } from '../adapters/file-logs.js';
import { pollHttp } from '../health.js';
import { ErrorType } from '../../shared/constants.js';
import type { SqliteDeps } from './deps.js';
import { putBackForensicCopy, takeForensicCopy, type ForensicCopy } from './forensics.js';
import { heartbeating } from './heartbeat.js';
import { loadSqliteTarget, type SqliteTarget, type TargetRef } from './target.js';
import { validateDatabase, type ValidationReport } from './validation.js';

// What every SQLite rollback does around its own change: stop and start the services, assess and validate the
// database, keep a forensic copy (and put it back: the undo), check health and smoke tests, watch the error log.

const verificationFailed = (message: string) => ApplicationFailure.nonRetryable(message, ErrorType.VerificationFailed);

function servicesOf(t: SqliteTarget, names?: string[]) {
  const all = Object.keys(t.services);
  const chosen = names && names.length ? names : all;
  for (const n of chosen)
    if (!t.services[n])
      throw ApplicationFailure.nonRetryable(
        `${t.loaded.file}: targets.${t.loaded.targetName}.sqlite.services: no service "${n}"`,
        ErrorType.EnvironmentInvalid,
      );
  return chosen.map((name) => ({ name, service: t.services[name]! }));
}

export interface ServiceStates {
  services: Array<{ name: string; running: boolean; detail: string }>;
}

export const createSqliteOperateActivities = (deps: SqliteDeps) => {
  const load = (ref: TargetRef) => loadSqliteTarget(deps.environmentsDir, ref, deps.runner);

  return {
    async sqliteServiceStates(ref: TargetRef & { services?: string[] }): Promise<ServiceStates> {
      const t = await load(ref);
      const services = [];
      for (const { name, service } of servicesOf(t, ref.services)) {
        const s = await service.status();
        services.push({ name, running: s.running, detail: s.detail });
      }
      return { services };
    },

    /** Stops the services (all, or the named ones) and checks they are down. Idempotent; heartbeats. */
    async stopSqliteServices(ref: TargetRef & { services?: string[] }): Promise<ServiceStates> {
      const t = await load(ref);
      const services: ServiceStates['services'] = [];
      for (const { name, service } of servicesOf(t, ref.services)) {
        await heartbeating(service.stop());
        const s = await service.status();
        if (s.running) throw new Error(`${service.describe()} still running after stop: ${s.detail}`);
        services.push({ name, running: false, detail: s.detail });
        deps.log.info({ target: `${ref.environment}/${ref.target}`, service: name }, 'service stopped');
      }
      return { services };
    },

    /** Starts the services (all, or the named ones) that are not running. Idempotent; heartbeats. */
    async startSqliteServices(ref: TargetRef & { services?: string[] }): Promise<ServiceStates> {
      const t = await load(ref);
      const services: ServiceStates['services'] = [];
      for (const { name, service } of servicesOf(t, ref.services)) {
        if (!(await service.status()).running) await heartbeating(service.start());
        const s = await service.status();
        if (!s.running) throw new Error(`${service.describe()} not running after start: ${s.detail}`);
        services.push({ name, running: true, detail: s.detail });
      }
      return { services };
    },

    /**
     * The seed's checklist on the live file (§2.4 step 2 assessment with `quick`, step 5 / §5.2 with `full`).
     * `mustPass`: a failing check is VerificationFailed; otherwise the report says what is wrong. `sql: false`
     * leaves out the smoke queries (a fresh database has no rows for them).
     */
    async validateLiveDatabase(
      ref: TargetRef & {
        integrity: 'quick' | 'full';
        mustPass?: boolean;
        coreTables?: string[];
        peek?: boolean;
        sql?: boolean;
      },
    ): Promise<ValidationReport> {
      const t = await load(ref);
      const report = await heartbeating(
        validateDatabase(t.db, t.config, {
          integrity: ref.integrity,
          coreTables: ref.coreTables,
          peek: ref.peek,
          sql: ref.sql,
        }),
      );
      if (ref.mustPass && !report.ok) throw verificationFailed(`${t.db}: ${report.problems.join('; ')}`);
      return report;
    },

    /** db + wal + shm copied aside with their digests, before anything replaces them (idempotent per tag). */
    async takeSqliteForensicCopy(ref: TargetRef & { tag: string }): Promise<ForensicCopy> {
      const t = await load(ref);
      return heartbeating(takeForensicCopy(t.db, `${t.forensicsDir}/${ref.tag}`));
    },

    /** The undo of every destructive SQLite step: the forensic copy back in place, byte-identical. */
    async putBackSqliteForensicCopy(
      ref: TargetRef & { tag: string },
    ): Promise<{ restored: string[]; removed: string[] }> {
      const t = await load(ref);
      const r = await heartbeating(putBackForensicCopy(t.db, `${t.forensicsDir}/${ref.tag}`));
      deps.log.warn({ target: `${ref.environment}/${ref.target}`, ...r }, 'forensic copy put back');
      return r;
    },

    /** Health (polled within its window) and every smoke HTTP check once. */
    async checkSqliteHealth(ref: TargetRef & { smoke?: boolean }): Promise<{ health?: string; smoke: string[] }> {
      const t = await load(ref);
      const http = t.loaded.target.health?.http;
      const health = http ? await pollHttp(http) : undefined;
      const smoke: string[] = [];
      if (ref.smoke !== false) {
        for (const s of t.config.smoke.http) {
          const r = await pollHttp({ ...s, within: '0s' });
          smoke.push(`${s.name ?? s.url}: HTTP ${r.status}`);
        }
      }
      return { health: health ? `HTTP ${health.status} after ${health.ms} ms` : undefined, smoke };
    },

    /** Where the error log ends now: the monitoring window counts lines after it. */
    async errorLogCursor(ref: TargetRef): Promise<string | null> {
      const t = await load(ref);
      return t.errorLog ? new FileLogSource(t.errorLog).cursor() : null;
    },

    /**
     * One look of the monitoring window: health once (no polling) and the error lines since `cursor`.
     * Never throws for what it sees: the workflow decides (so every look is in history).
     */
    async monitorSqliteOnce(
      ref: TargetRef & { cursor: string | null },
    ): Promise<{ healthy: boolean; problem?: string; errors: number; sample: string[] }> {
      const t = await load(ref);
      const http = t.loaded.target.health?.http;
      let healthy = true;
      let problem: string | undefined;
      if (http) {
        try {
          await pollHttp({ ...http, within: '0s' });
        } catch (err) {
          healthy = false;
          problem = (err as Error).message;
        }
      }
      if (!t.errorLog || ref.cursor === null) return { healthy, problem, errors: 0, sample: [] };
      const m = await new FileLogSource(t.errorLog).matchesSince(ref.cursor, new RegExp(t.config.monitor.pattern));
      return { healthy, problem, errors: m.count, sample: m.sample };
    },
  };
};
