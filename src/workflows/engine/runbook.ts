import {
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  metricMeter,
  patched,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
  ActivityFailure,
} from '@temporalio/workflow';
import { ErrorType, type Outcome } from '../../shared/constants.js';
import { parseDuration } from '../../shared/duration.js';
import { abortSignal, approveSignal, rejectSignal, statusQuery } from '../../shared/messages.js';
import type {
  ApprovalPolicy,
  ApprovalRecord,
  EscalationLevel,
  EscalationRecord,
  EvidenceRef,
  Phase,
  Plan,
  RunbookResult,
  RunbookStatus,
  StepRecord,
} from '../../shared/types.js';
import { engineActivities } from './activities.js';
import { onActivityAttempt } from './interceptors.js';

/** Thrown inside the body to end the run early with a decided outcome (rejection, timeout, dry run). */
class RunbookStop extends Error {
  constructor(
    readonly outcome: Outcome,
    message: string,
  ) {
    super(message);
    this.name = 'RunbookStop';
  }
}

export interface RunbookOptions {
  runbook: string;
  environment: string;
  target: string;
  requester: string;
  reason: string;
  dryRun: boolean;
  /** every step the runbook may run, in order, so `status` shows what is still to come */
  steps: string[];
}

export interface StepOptions<T> {
  /** registered right after the step succeeds; runs (in reverse order) when the run does not succeed */
  undo?: (result: T) => Promise<unknown>;
  /** a one-line result for status and evidence */
  summarize?: (result: T) => string;
  /** when set, the escalation ladder starts if the step runs longer than this */
  expectedDuration?: string;
}

interface Compensation {
  step: string;
  undo: () => Promise<unknown>;
}

const stepDuration = metricMeter.createHistogram('runbook_step_duration', 'int', 'ms', 'Duration of runbook steps');
const runsStarted = metricMeter.createCounter('runbook_runs_started', 'runs', 'Runbook runs started');
const runsFinished = metricMeter.createCounter('runbook_runs_finished', 'runs', 'Runbook runs finished, by outcome');
// the workflow meter has no up-down counter: approvals waiting = waits_started - waits_ended
const approvalWaitsStarted = metricMeter.createCounter(
  'runbook_approval_waits_started',
  'runs',
  'Approval gates opened',
);
const approvalWaitsEnded = metricMeter.createCounter('runbook_approval_waits_ended', 'runs', 'Approval gates closed');

const nowIso = (): string => new Date().toISOString();
const HEX_PREFIX = /^[0-9a-f]{12,64}$/;

function errorMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return errorMessage(err.cause);
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * One run of a runbook: steps with status and timing, an approval gate bound to a plan hash, an escalation
 * ladder on durable timers, compensation in reverse on any unsuccessful end, and evidence.
 */
export class Runbook {
  readonly state: RunbookStatus;
  private readonly compensations: Compensation[] = [];
  private readonly scope = new CancellationScope({ cancellable: true });
  private escalationPolicy: EscalationLevel[] = [];
  private gateOpen = false;
  private rejected = false;

  constructor(private readonly options: RunbookOptions) {
    const info = workflowInfo();
    this.state = {
      runbook: options.runbook,
      workflowId: info.workflowId,
      runId: info.runId,
      environment: options.environment,
      target: options.target,
      requester: options.requester,
      reason: options.reason,
      dryRun: options.dryRun,
      startedAt: nowIso(),
      phase: 'prepare',
      steps: options.steps.map((name) => ({ name, status: 'pending', destructive: false, attempts: 0 })),
      approval: { waiting: false, approvedBy: [], records: [] },
      escalation: { level: 0, history: [] },
      compensations: [],
      phases: [{ phase: 'prepare', startedAt: nowIso() }],
    };
    // runs started from the Web UI or `temporal workflow start` may lack these: set them so filters and the
    // CLI's busy-target check see every run
    if (patched('identity-search-attributes')) {
      upsertSearchAttributes({
        RunbookName: [options.runbook],
        Environment: [options.environment],
        Target: [options.target],
      });
    }
    setHandler(statusQuery, () => this.state);
    // a step's attempts: the highest attempt number among its activities (escalation notices excluded)
    onActivityAttempt((activityType, attempt) => {
      const step = this.state.currentStep ? this.state.steps.find((s) => s.name === this.state.currentStep) : undefined;
      if (step && activityType !== 'notify') step.attempts = Math.max(step.attempts, attempt);
    });
    setHandler(approveSignal, (signal) => this.onApprove(signal));
    setHandler(rejectSignal, (signal) => this.onReject(signal));
    setHandler(abortSignal, ({ by, reason }) => {
      if (this.state.abort || this.state.outcome) return;
      this.state.abort = { by: String(by ?? 'unknown'), reason: String(reason ?? 'not given'), at: nowIso() };
      log.warn('abort requested', { by, reason });
      this.scope.cancel();
    });
  }

  /** Runs the body, then always compensates (when needed), writes evidence and sets the Outcome attribute. */
  async run(body: () => Promise<void>, extra?: () => Record<string, unknown>): Promise<RunbookResult> {
    runsStarted.withTags({ runbook: this.options.runbook }).add(1);
    let outcome: Outcome = 'succeeded';
    let failure: unknown;
    try {
      if (this.state.abort) throw new RunbookStop('aborted', 'aborted before the first step');
      await this.scope.run(body);
      if (this.state.dryRun) outcome = 'dry_run';
    } catch (err) {
      failure = err;
      if (err instanceof RunbookStop) outcome = err.outcome;
      else if (this.state.abort) outcome = 'aborted';
      else if (isCancellation(err)) outcome = 'cancelled';
      else outcome = 'failed';
      this.state.error =
        outcome === 'aborted' && this.state.abort
          ? `aborted by ${this.state.abort.by}: ${this.state.abort.reason}`
          : errorMessage(err);
    }
    this.markUnfinishedSteps(outcome);
    const result = await CancellationScope.nonCancellable(async () => {
      if (outcome !== 'succeeded' && outcome !== 'dry_run' && this.compensations.length > 0) {
        const allUndone = await this.compensate();
        if (!allUndone) outcome = 'compensation_failed';
      }
      return this.finish(outcome, extra?.());
    });
    if (outcome === 'cancelled') throw failure;
    if (outcome === 'failed' || outcome === 'compensation_failed') {
      throw ApplicationFailure.create({
        message: `${this.options.runbook} ${outcome}: ${result.error ?? 'see the step list'}`,
        type: outcome === 'failed' ? ErrorType.RunbookFailed : ErrorType.CompensationFailed,
        nonRetryable: true,
        details: [result],
      });
    }
    return result;
  }

  /** Runs one named step; a step with an undo is destructive and its undo is registered on success. */
  async step<T>(name: string, fn: () => Promise<T>, options: StepOptions<T> = {}): Promise<T> {
    const record = this.record(name);
    record.status = 'running';
    record.startedAt = nowIso();
    record.attempts = Math.max(record.attempts, 1);
    record.destructive = Boolean(options.undo);
    this.state.currentStep = name;
    const started = Date.now();
    try {
      const work = fn();
      const result = options.expectedDuration
        ? await this.withEscalation(
            `step "${name}" running past ${options.expectedDuration}`,
            options.expectedDuration,
            work,
          )
        : await work;
      record.status = 'succeeded';
      record.result = options.summarize?.(result);
      if (options.undo) {
        const undo = options.undo;
        this.compensations.push({ step: name, undo: () => undo(result) });
      }
      return result;
    } catch (err) {
      record.status = 'failed';
      record.error = errorMessage(err);
      throw err;
    } finally {
      record.endedAt = nowIso();
      stepDuration
        .withTags({ runbook: this.options.runbook, step: name, status: record.status })
        .record(Date.now() - started);
      if (this.state.currentStep === name) this.state.currentStep = undefined;
    }
  }

  /** Marks a step skipped (for example a read-back not needed in this mode). */
  skip(name: string, why: string): void {
    const record = this.record(name);
    record.status = 'skipped';
    record.result = why;
  }

  /**
   * The approval gate: seals the plan (hash), waits for a quorum of valid approvals, a rejection, the
   * timeout or an abort. In a dry run it records the plan and ends the run with outcome `dry_run`.
   */
  async approval(plan: Plan, policy: ApprovalPolicy, escalation: EscalationLevel[]): Promise<void> {
    const { planHash } = await this.step('seal plan', () => engineActivities.sealPlan(plan), {
      summarize: (r) => `plan ${r.planHash.slice(0, 12)}`,
    });
    this.state.plan = plan;
    this.state.planHash = planHash;
    this.state.approval.policy = policy;
    this.escalationPolicy = escalation;
    if (this.state.dryRun) throw new RunbookStop('dry_run', 'dry run: stopped at the approval gate, nothing changed');

    this.enterPhase('approval');
    const record = this.record('approval');
    record.status = 'running';
    record.startedAt = nowIso();
    record.attempts = 1;
    this.state.currentStep = 'approval';
    this.state.approval.waiting = true;
    this.gateOpen = true;
    approvalWaitsStarted.withTags({ runbook: this.options.runbook }).add(1);
    try {
      const decided = await this.withEscalation(
        'approval pending',
        '0s',
        condition(
          () => this.rejected || this.state.approval.approvedBy.length >= policy.quorum,
          parseDuration(policy.timeout),
        ),
      );
      record.endedAt = nowIso();
      if (!decided) {
        record.status = 'failed';
        record.error = `no quorum within ${policy.timeout}`;
        throw new RunbookStop('timed_out', `approval timed out after ${policy.timeout}`);
      }
      if (this.rejected) {
        const by = this.state.approval.records.find((r) => r.kind === 'reject' && r.accepted);
        record.status = 'failed';
        record.error = `rejected by ${by?.by}${by?.comment ? `: ${by.comment}` : ''}`;
        throw new RunbookStop('rejected', record.error);
      }
      record.status = 'succeeded';
      record.result = `approved by ${this.state.approval.approvedBy.join(', ')}`;
    } finally {
      this.gateOpen = false;
      this.state.approval.waiting = false;
      if (this.state.currentStep === 'approval') this.state.currentStep = undefined;
      if (record.status === 'running') {
        record.status = 'failed';
        record.endedAt = nowIso();
      }
      approvalWaitsEnded.withTags({ runbook: this.options.runbook }).add(1);
    }
    this.enterPhase('execute');
  }

  /** Notify through the environment's channels (never fails the run: delivery problems are recorded). */
  async notify(subject: string, text: string): Promise<boolean> {
    try {
      await engineActivities.notify({ environment: this.options.environment, subject, text, channels: [] });
      return true;
    } catch (err) {
      log.warn('notification failed', { error: errorMessage(err) });
      return false;
    }
  }

  // ------------------------------------------------------------------------------------------------------

  private record(name: string): StepRecord {
    let record = this.state.steps.find((s) => s.name === name);
    if (!record) {
      record = { name, status: 'pending', destructive: false, attempts: 0 };
      this.state.steps.push(record);
    }
    return record;
  }

  private enterPhase(phase: Phase): void {
    const now = nowIso();
    const current = this.state.phases[this.state.phases.length - 1];
    if (current && !current.endedAt) {
      current.endedAt = now;
      current.durationMs = Date.parse(now) - Date.parse(current.startedAt);
    }
    this.state.phase = phase;
    this.state.phases.push({ phase, startedAt: now });
  }

  private onApprove(signal: { by?: unknown; comment?: unknown; planHash?: unknown }): void {
    const by = typeof signal?.by === 'string' ? signal.by.trim() : '';
    const planHash = typeof signal?.planHash === 'string' ? signal.planHash.trim().toLowerCase() : '';
    const entry: ApprovalRecord = {
      kind: 'approve',
      by: by || '(missing)',
      comment: typeof signal?.comment === 'string' ? signal.comment : undefined,
      planHash: planHash || undefined,
      at: nowIso(),
      accepted: false,
    };
    entry.ignoredBecause = this.whyIgnore(entry, true);
    if (!entry.ignoredBecause && this.state.approval.approvedBy.includes(by))
      entry.ignoredBecause = 'duplicate approval';
    if (!entry.ignoredBecause) {
      entry.accepted = true;
      this.state.approval.approvedBy.push(by);
    }
    this.state.approval.records.push(entry);
  }

  private onReject(signal: { by?: unknown; comment?: unknown; planHash?: unknown }): void {
    const by = typeof signal?.by === 'string' ? signal.by.trim() : '';
    const entry: ApprovalRecord = {
      kind: 'reject',
      by: by || '(missing)',
      comment: typeof signal?.comment === 'string' ? signal.comment : undefined,
      planHash: typeof signal?.planHash === 'string' ? signal.planHash : undefined,
      at: nowIso(),
      accepted: false,
    };
    entry.ignoredBecause = this.whyIgnore(entry, false);
    if (!entry.ignoredBecause) {
      entry.accepted = true;
      this.rejected = true;
    }
    this.state.approval.records.push(entry);
  }

  private whyIgnore(entry: ApprovalRecord, needsHash: boolean): string | undefined {
    const policy = this.state.approval.policy;
    if (!this.gateOpen || !policy || !this.state.planHash) return 'no approval is pending';
    if (!entry.by || entry.by === '(missing)') return 'missing "by"';
    if (policy.approvers.length > 0 && !policy.approvers.includes(entry.by))
      return `${entry.by} is not an allowed approver`;
    if (entry.kind === 'approve' && !policy.allowSelfApproval && entry.by === this.state.requester) {
      return 'the requester may not approve their own run';
    }
    if (needsHash) {
      if (!entry.planHash) return 'missing planHash';
      if (!HEX_PREFIX.test(entry.planHash)) return 'planHash must be at least 12 hex characters';
      if (!this.state.planHash.startsWith(entry.planHash))
        return `stale plan hash ${entry.planHash.slice(0, 12)} (current ${this.state.planHash.slice(0, 12)})`;
    }
    return undefined;
  }

  /** Runs `work` while an escalation ladder (durable timers) notifies level by level until it settles. */
  private async withEscalation<T>(reason: string, startAfter: string, work: Promise<T>): Promise<T> {
    const ladder = this.escalationPolicy;
    if (ladder.length === 0) return work;
    const escalation = new CancellationScope({ cancellable: true });
    const ladderDone = escalation
      .run(async () => {
        const offset = parseDuration(startAfter);
        let elapsed = 0;
        for (const level of [...ladder].sort((a, b) => a.level - b.level)) {
          const at = offset + parseDuration(level.after);
          if (at > elapsed) await sleep(at - elapsed);
          elapsed = at;
          await this.escalate(level, reason);
        }
      })
      .catch((err: unknown) => {
        if (!isCancellation(err)) log.warn('escalation ladder stopped', { error: errorMessage(err) });
      });
    try {
      return await work;
    } finally {
      escalation.cancel();
      await ladderDone;
    }
  }

  private async escalate(level: EscalationLevel, reason: string): Promise<void> {
    const entry: EscalationRecord = {
      level: level.level,
      at: nowIso(),
      reason,
      contact: level.contact,
      delivered: false,
    };
    this.state.escalation.level = level.level;
    this.state.escalation.history.push(entry);
    const subject = `[L${level.level}] ${this.options.runbook} on ${this.options.environment}/${this.options.target}: ${reason}`;
    const text =
      `${subject}\nworkflow ${this.state.workflowId}; requested by ${this.state.requester}; contact: ${level.contact ?? 'n/a'}` +
      (this.state.planHash ? `\nplan ${this.state.planHash.slice(0, 12)}: ${this.state.plan?.summary ?? ''}` : '');
    try {
      await engineActivities.notify({ environment: this.options.environment, subject, text, channels: level.channels });
      entry.delivered = true;
    } catch (err) {
      if (isCancellation(err)) throw err;
      entry.error = errorMessage(err);
    }
  }

  /** Runs registered undos in reverse; returns false when any undo still failed after its retries. */
  private async compensate(): Promise<boolean> {
    this.enterPhase('compensate');
    let allUndone = true;
    for (const compensation of [...this.compensations].reverse()) {
      const startedAt = nowIso();
      this.state.currentStep = `undo: ${compensation.step}`;
      try {
        await compensation.undo();
        this.state.compensations.push({ step: compensation.step, status: 'succeeded', startedAt, endedAt: nowIso() });
        this.record(compensation.step).status = 'compensated';
      } catch (err) {
        allUndone = false;
        const error = errorMessage(err);
        log.error('compensation failed', { step: compensation.step, error });
        this.state.compensations.push({
          step: compensation.step,
          status: 'failed',
          startedAt,
          endedAt: nowIso(),
          error,
        });
      }
    }
    this.state.currentStep = undefined;
    return allUndone;
  }

  private markUnfinishedSteps(outcome: Outcome): void {
    for (const step of this.state.steps) {
      if (step.status === 'pending') {
        step.status = 'skipped';
        step.result = `not run (${outcome})`;
      } else if (step.status === 'running') {
        step.status = 'failed';
        step.error ??= outcome;
        step.endedAt = nowIso();
      }
    }
  }

  private async finish(outcome: Outcome, extra?: Record<string, unknown>): Promise<RunbookResult> {
    this.enterPhase('finalize');
    this.state.outcome = outcome;
    this.state.endedAt = nowIso();
    const last = this.state.phases[this.state.phases.length - 1]!;
    last.endedAt = this.state.endedAt;
    last.durationMs = Date.parse(last.endedAt) - Date.parse(last.startedAt);
    let evidence: EvidenceRef | undefined;
    try {
      evidence = await engineActivities.writeEvidence({ status: this.state, extra });
    } catch (err) {
      this.state.error = `${this.state.error ? `${this.state.error}; ` : ''}evidence not written: ${errorMessage(err)}`;
    }
    upsertSearchAttributes({ Outcome: [outcome] });
    runsFinished.withTags({ runbook: this.options.runbook, outcome }).add(1);
    return { ...this.state, outcome, evidence };
  }
}
