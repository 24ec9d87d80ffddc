import type { DatabaseInspection, SqliteTargetDescription } from '../../activities/sqlite/describe.js';
import type { ForensicCopy } from '../../activities/sqlite/forensics.js';
import type { SqliteActivities } from '../../activities/sqlite/index.js';
import type { ServiceStates } from '../../activities/sqlite/operate.js';
import { formatBytes } from '../../shared/bytes.js';
import { formatDuration, parseDuration } from '../../shared/duration.js';
import { lengthenDuration, tightenApproval } from '../../shared/input.js';
import type { ApprovalPolicy, Plan, PlanChange } from '../../shared/types.js';
import { runbookActivities } from '../engine/activity-options.js';
import { Runbook, type StepOptions } from '../engine/runbook.js';
import { monitorWindow, type MonitorResult } from './monitor.js';
import { runTag } from './names.js';
import { checkDetectedAt, formatRto, measureRto, type RtoReport } from './rto.js';

// after the approval every call heartbeats (long, verify, longUndo): a worker that dies mid-step is noticed within
// 10 s and the step retried on another, instead of stalling the recovery for a start-to-close timeout
const acts = runbookActivities<SqliteActivities>('quick');
const long = runbookActivities<SqliteActivities>('long');
const verify = runbookActivities<SqliteActivities>('verify');
const undo = runbookActivities<SqliteActivities>('longUndo');

/** The steps every SQLite recovery runbook (restore, fresh start) shares; each lists them in its own order. */
export type RecoveryStep =
  | 'load environment'
  | 'inspect'
  | 'check space'
  | 'approval'
  | 'stop services'
  | 'forensic copy'
  | 'validate'
  | 'start services'
  | 'health and smoke'
  | 'monitor'
  | 'report RTO';

/** How every recovery ends once its own change is made; each runbook's step list ends with these. */
export const RETURN_TO_SERVICE_STEPS = [
  'validate',
  'start services',
  'health and smoke',
  'monitor',
  'report RTO',
] as const;

/** What a recovery runbook's input has (sqlite-inputs.ts). */
export interface RecoveryInput {
  environment: string;
  target: string;
  requester: string;
  reason: string;
  dryRun: boolean;
  lockWait?: string;
  approval?: { quorum?: number; timeout?: string };
  /** when the incident was detected: the RTO starts there (checked with checkDetectedAt) */
  detectedAt?: string;
  /** at least the environment's monitor.window */
  monitorWindow?: string;
}

/**
 * The run of a recovery runbook from its parsed input: its Runbook (its own steps) and the shared steps, whose RTO
 * `restore` phase ends with `restoreStep`. A detectedAt in the future or older than 7 days is InvalidInput here.
 */
export function recoveryRun<S extends string>(
  runbook: string,
  input: RecoveryInput,
  steps: readonly S[],
  restoreStep: S,
): { rb: Runbook<S>; r: SqliteRecovery<S>; ref: { environment: string; target: string } } {
  const detectedAt = checkDetectedAt(input.detectedAt, Date.now());
  const ref = { environment: input.environment, target: input.target };
  const { requester, reason, dryRun, lockWait } = input;
  const rb = new Runbook({ runbook, ...ref, requester, reason, dryRun, steps, lockWait });
  const r = new SqliteRecovery(rb, ref, { ...input, detectedAt, restoreStep });
  return { rb, r, ref };
}

interface RecoveryOptions extends Pick<RecoveryInput, 'detectedAt' | 'monitorWindow' | 'approval'> {
  restoreStep: string;
}

/** What the run's evidence and post-mortem read (see src/activities/evidence/postmortem.ts for the names). */
export interface RecoveryFacts {
  severity?: 'CRITICAL' | 'HIGH';
  servicesAffected: string[];
  dataLoss?: string;
  forensicCopy?: { dir: string; files: ForensicCopy['files']; absent: ForensicCopy['absent'] };
  monitor?: MonitorResult & { window: string };
  rto: RtoReport;
}

/**
 * The steps the SQLite restore and fresh start share, around each one's own change (seed §2.1, §2.4, §3.3, §7.1):
 * load the target and its policies, inspect, check space, stop the services (undo: start them), take the forensic
 * copy, validate the live database, start the services (undo: stop them), health and smoke, the monitoring window,
 * the RTO. Every step publishes the RTO so far (`status` shows it while the run goes on).
 */
export class SqliteRecovery<S extends string> {
  target!: SqliteTargetDescription;
  /** the monitoring window: the environment's, or the input's when longer */
  window = '';
  before?: { inspection: DatabaseInspection; services: ServiceStates['services'] };
  forensic?: ForensicCopy;
  severity?: RecoveryFacts['severity'];
  dataLoss?: string;
  private monitored?: MonitorResult;
  /** the run's forensic copy: `<forensicsDir>/<tag>` */
  readonly tag: string;
  private readonly rb: Runbook<RecoveryStep>;

  constructor(
    rb: Runbook<S>,
    readonly ref: { environment: string; target: string },
    private readonly o: RecoveryOptions,
  ) {
    this.rb = rb as unknown as Runbook<RecoveryStep>;
    this.tag = runTag(this.rb.state.workflowId, this.rb.state.runId);
  }

  /** A step of the runbook's own; the RTO so far is published after it, whatever its end. */
  async step<T>(name: S, fn: () => Promise<T>, options?: StepOptions<T>): Promise<T> {
    try {
      return await this.rb.step(name as unknown as RecoveryStep, fn, options);
    } finally {
      this.publishRto();
    }
  }

  get forensicDir(): string {
    return `${this.target.forensicsDir}/${this.tag}`;
  }

  get serviceNames(): string[] {
    return this.target.services.map((s) => s.name);
  }

  /** The plan's changes every recovery makes besides the database: the services, the forensic copy. */
  planChanges(services: ServiceStates['services'], what: string): PlanChange[] {
    return [
      ...services.map((s) => ({
        item: `service ${s.name}`,
        from: s.running ? 'running' : 'stopped',
        to: `stopped for the ${what}, then started`,
      })),
      { item: this.forensicDir, from: null, to: 'forensic copy of the database, its WAL and shm' },
    ];
  }

  /** How every recovery plan's summary ends: the services, and what happens when the run does not succeed. */
  planSummaryTail(what: string): string {
    return (
      `services ${this.serviceNames.join(', ') || '(none)'} are stopped for the ${what} and started after; on ` +
      `failure or abort the original database is put back and the services started again`
    );
  }

  /** The plan's details every recovery has. */
  planDetails(): Record<string, unknown> {
    return {
      services: this.serviceNames,
      forensicDir: this.forensicDir,
      monitorWindow: this.window,
      rto: this.target.rto,
      detectedAt: this.o.detectedAt ?? null,
    };
  }

  /** The target, its approval policy (input may only tighten) and escalation, the monitoring window (only longer). */
  async loadEnvironment(): Promise<SqliteTargetDescription> {
    this.target = await this.step('load environment' as S, () => acts.describeSqliteTarget(this.ref), {
      summarize: (t) =>
        `${t.database}; services ${t.services.map((s) => s.name).join(', ') || 'none'}; backups ${t.backupsDir}; RTO ${t.rto}`,
    });
    const policy: ApprovalPolicy = tightenApproval(this.target.approval, this.o.approval);
    this.rb.usePolicy(policy, this.target.escalation);
    this.window = lengthenDuration('monitorWindow', this.target.monitor.window, this.o.monitorWindow);
    this.publishRto();
    return this.target;
  }

  /** Read-only: the database's files and free space, the services' states. */
  async inspect(): Promise<NonNullable<SqliteRecovery<S>['before']>> {
    this.before = await this.step(
      'inspect' as S,
      async () => ({
        inspection: await acts.inspectDatabase(this.ref),
        services: (await acts.sqliteServiceStates(this.ref)).services,
      }),
      {
        summarize: ({ inspection: i, services }) =>
          `${i.exists ? `db ${formatBytes(i.bytes)}, WAL ${formatBytes(i.walBytes)}, shm ${formatBytes(i.shmBytes)}` : 'no database file'}; ${formatBytes(i.freeBytes)} free; ${services.map((s) => `${s.name} ${s.running ? 'running' : 'stopped'}`).join(', ') || 'no services'}`,
      },
    );
    return this.before;
  }

  /** Read-only, before the plan: room for the forensic copy and for `stagedBytes` beside the database. */
  async checkSpace(stagedBytes: number, what: string): Promise<void> {
    await this.step('check space' as S, () => acts.checkRecoverySpace({ ...this.ref, stagedBytes, what }), {
      summarize: (s) =>
        `forensic copy ${formatBytes(s.forensicBytes)} (${formatBytes(s.forensicsFree)} free), staged ${formatBytes(s.stagedBytes)} (${formatBytes(s.databaseFree)} free beside the database)`,
    });
  }

  /** The approval gate, then the RTO's `decide` phase is known. */
  async approval(plan: Plan): Promise<void> {
    await this.rb.approval(plan);
    this.publishRto();
  }

  /** Seed §2.4 step 1: every service of the database stops; undo: they are started again. */
  async stopServices(): Promise<void> {
    await this.step('stop services' as S, () => long.stopSqliteServices(this.ref), {
      summarize: (s) => `${s.services.map((x) => x.name).join(', ') || 'no services'} stopped`,
      undo: () => undo.startSqliteServices(this.ref),
    });
  }

  /**
   * db + wal + shm as found, with their digests, before anything opens the database (an integrity check after a
   * crash rebuilds the -shm index) and before anything replaces it.
   */
  async forensicCopy(): Promise<ForensicCopy> {
    this.forensic = await this.step(
      'forensic copy' as S,
      () => long.takeSqliteForensicCopy({ ...this.ref, tag: this.tag }),
      {
        summarize: (c) =>
          `${c.files.map((f) => `${f.name} ${formatBytes(f.bytes)}`).join(', ') || 'no files'} → ${c.dir}${c.absent.length ? ` (absent: ${c.absent.join(', ')})` : ''}`,
      },
    );
    return this.forensic;
  }

  /**
   * RETURN_TO_SERVICE_STEPS, after the runbook's own change: validate the live database (with the smoke SQL or
   * not) → start the services → health and smoke → the monitoring window → the RTO report.
   */
  async returnToService(o: { smokeSql: boolean }): Promise<RtoReport> {
    await this.validate(o.smokeSql);
    await this.startServices();
    await this.healthAndSmoke();
    await this.monitor();
    return this.reportRto();
  }

  /** The seed's checklist on the live file (§2.4 step 5): integrity, FK, core tables, counts; must pass. */
  async validate(smokeSql: boolean): Promise<void> {
    await this.step(
      'validate' as S,
      () => long.validateLiveDatabase({ ...this.ref, integrity: 'full', mustPass: true, sql: smokeSql }),
      {
        summarize: (v) =>
          `integrity ${v.integrity}, ${v.foreignKeyViolations} FK violations, ${v.tables} tables, ${v.indexes} indexes${smokeSql ? `, smoke SQL ${v.sql.filter((q) => q.ok).length}/${v.sql.length}` : ''}`,
      },
    );
  }

  /** Seed §2.4 step 6; undo (registered before: a start can fail halfway): stop them, so nothing runs on a file an undo replaces. */
  async startServices(): Promise<void> {
    await this.step('start services' as S, () => long.startSqliteServices(this.ref), {
      summarize: (s) => `${s.services.map((x) => x.name).join(', ') || 'no services'} running`,
      undoBefore: () => undo.stopSqliteServices(this.ref),
    });
  }

  async healthAndSmoke(): Promise<void> {
    await this.step('health and smoke' as S, () => verify.checkSqliteHealth(this.ref), {
      summarize: (r) => [r.health ? `health ${r.health}` : 'no health check', ...r.smoke].join('; '),
    });
  }

  /**
   * Seed §7.1 "monitor for errors": health and the error log on durable timers for the window; the escalation
   * ladder starts when it runs past 1.5 × the window (a stuck look, a dead worker).
   */
  async monitor(): Promise<void> {
    const { interval, maxErrors } = this.target.monitor;
    this.monitored = await this.step(
      'monitor' as S,
      () => monitorWindow(this.ref, { window: this.window, interval, maxErrors }),
      {
        expectedDuration: `${Math.ceil(parseDuration(this.window) * 1.5)}ms`,
        summarize: (m) =>
          `${formatDuration(m.windowMs)}: ${m.looks} looks, ${m.unhealthyLooks} unhealthy, ${m.errors} error lines`,
      },
    );
  }

  /** The last step: the RTO per phase against the environment's target. */
  async reportRto(): Promise<RtoReport> {
    return this.step('report RTO' as S, async () => this.rto(), { summarize: formatRto });
  }

  /** The RTO from the step records so far (the history's times); not reached once anything was undone. */
  rto(): RtoReport {
    const { state } = this.rb;
    const report = measureRto(
      {
        detectedAt: this.o.detectedAt,
        startedAt: state.startedAt,
        steps: state.steps,
        ends: { decide: 'approval', restore: this.o.restoreStep, verify: 'validate', healthy: 'health and smoke' },
      },
      this.target?.rto ?? '1h',
    );
    return state.compensations.length ? { ...report, totalMs: undefined, withinTarget: undefined } : report;
  }

  publishRto(): void {
    this.rb.publish('rto', this.rto());
  }

  /** Seed §2.4 step 2: CRITICAL when the database fails its check, HIGH otherwise. */
  setSeverity(severity: NonNullable<RecoveryFacts['severity']>): void {
    this.severity = severity;
    this.rb.publish('severity', severity);
  }

  /** The facts every recovery's evidence carries (the runbook adds its own); the final RTO is published too. */
  facts(): RecoveryFacts {
    const f = this.forensic;
    this.publishRto();
    return {
      severity: this.severity,
      servicesAffected: this.target ? this.serviceNames : [],
      dataLoss: this.dataLoss,
      forensicCopy: f ? { dir: f.dir, files: f.files, absent: f.absent } : undefined,
      monitor: this.monitored ? { ...this.monitored, window: this.window } : undefined,
      rto: this.rto(),
    };
  }
}
