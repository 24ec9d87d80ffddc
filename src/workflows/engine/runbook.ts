import {
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  log,
  metricMeter,
  patched,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { ErrorType, type Outcome } from '../../shared/constants.js';
import { statusQuery } from '../../shared/messages.js';
import type {
  ApprovalPolicy,
  EscalationLevel,
  EscalationRecord,
  Phase,
  Plan,
  RunbookResult,
  RunbookStatus,
  StepRecord,
} from '../../shared/types.js';
import { engineActivities } from './activities.js';
import { ApprovalGate } from './approval-gate.js';
import { Compensations } from './compensation.js';
import { EscalationLadder } from './escalation.js';
import { recordEvidence } from './evidence.js';
import { onActivityAttempt } from './interceptors.js';
import { PlanGates } from './plan-gates.js';
import { errorMessage, nowIso, RunbookStop } from './stop.js';
import { TargetLocks } from './target-locks.js';

/** failure types a failed run keeps as its own (any other failure ends it as RunbookFailed) */
const KEPT_FAILURE_TYPES: string[] = [ErrorType.InvalidInput, ErrorType.SoakFailed, ErrorType.CleanupRolledBack];

/** The engine's own first step; a runbook with an approval gate lists 'seal plan' and 'approval' itself. */
const LOCK_STEP = 'lock target';

export interface RunbookOptions<S extends string> {
  runbook: string;
  environment: string;
  target: string;
  requester: string;
  reason: string;
  dryRun: boolean;
  /** every step the runbook may run, in order (`as const`): `status` shows what is still to come */
  steps: readonly S[];
  /** the input's lockWait (at most the environment's) */
  lockWait?: string;
}

export interface StepOptions<T> {
  /** The step's undo, registered when the step succeeds; runs (in reverse order) when the run does not succeed. */
  undo?: (result: T) => Promise<unknown>;
  /**
   * The undo of a step that can partially apply (write a flag, then reload): registered before the step acts,
   * so a failure halfway is undone too. It must be safe when the step did nothing (undo only what it finds done).
   */
  undoBefore?: () => Promise<unknown>;
  /** a one-line result for status and evidence */
  summarize?: (result: T) => string;
  /** when set, the escalation ladder starts if the step runs longer than this */
  expectedDuration?: string;
}

const stepDuration = metricMeter.createHistogram('runbook_step_duration', 'int', 'ms', 'Duration of runbook steps');
const runsStarted = metricMeter.createCounter('runbook_runs_started', 'runs', 'Runbook runs started');
const runsFinished = metricMeter.createCounter('runbook_runs_finished', 'runs', 'Runbook runs finished, by outcome');

/**
 * One run of a runbook: declared steps with status and timing, the target lock, an approval gate bound to a plan
 * hash, an escalation ladder on durable timers, compensation in reverse on any unsuccessful end, and evidence.
 * `S` is the runbook's step names: a step that is not declared does not compile.
 */
export class Runbook<S extends string> {
  readonly state: RunbookStatus;
  /** runs started before engine v2 keep its rules so their histories replay (patched() is false for them) */
  private readonly v2: boolean;
  private readonly compensations = new Compensations();
  private readonly scope = new CancellationScope({ cancellable: true });
  private readonly ladder: EscalationLadder;
  private readonly gate: ApprovalGate;
  private readonly locks: TargetLocks | undefined;
  private readonly gates: PlanGates;

  constructor(private readonly options: RunbookOptions<S>) {
    const info = workflowInfo();
    this.v2 = patched('engine-v2');
    const steps = this.v2 ? [LOCK_STEP, ...options.steps] : [...options.steps];
    this.state = {
      runbook: options.runbook,
      engine: this.v2 ? 'v2' : undefined,
      workflowId: info.workflowId,
      runId: info.runId,
      environment: options.environment,
      target: options.target,
      requester: options.requester,
      reason: options.reason,
      dryRun: options.dryRun,
      startedAt: nowIso(),
      phase: 'prepare',
      steps: steps.map((name) => ({ name, status: 'pending', destructive: false, attempts: 0 })),
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
      const current = this.state.currentStep;
      const step = current ? this.state.steps.find((s) => s.name === current) : undefined;
      if (step && activityType !== 'notify') step.attempts = Math.max(step.attempts, attempt);
    });
    this.ladder = new EscalationLadder(this.state);
    this.gate = new ApprovalGate(this.state, this.v2 ? 'v2' : 'v1', (abort) => {
      this.state.abort = abort;
      log.warn('abort requested', { by: abort.by, reason: abort.reason });
      this.scope.cancel();
    });
    this.locks = this.v2 ? new TargetLocks(this.state) : undefined;
    this.gates = new PlanGates({
      state: this.state,
      v2: this.v2,
      runbook: options.runbook,
      gate: this.gate,
      ladder: this.ladder,
      runStep: (name, fn, o) => this.runStep(name, fn, o),
      record: (name) => this.record(name),
      enterPhase: (phase) => this.enterPhase(phase),
    });
  }

  /**
   * Runs the body (after taking the target), then always: compensates when needed, releases the target, writes
   * evidence and sets the Outcome attribute.
   */
  async run(body: () => Promise<void>, extra?: () => Record<string, unknown>): Promise<RunbookResult> {
    runsStarted.withTags({ runbook: this.options.runbook }).add(1);
    let outcome: Outcome = 'succeeded';
    let failure: unknown;
    try {
      if (this.state.abort) throw new RunbookStop('aborted', 'aborted before the first step');
      await this.scope.run(async () => {
        await this.lockTarget();
        await body();
      });
      if (this.state.dryRun) outcome = 'dry_run';
    } catch (err) {
      failure = err;
      if (err instanceof RunbookStop) outcome = err.outcome;
      else if (this.state.abort) outcome = 'aborted';
      else if (isCancellation(err)) outcome = 'cancelled';
      else outcome = 'failed';
      const abort = this.state.abort;
      this.state.error = outcome === 'aborted' && abort ? `aborted by ${abort.by}: ${abort.reason}` : errorMessage(err);
    }
    this.markUnfinishedSteps(outcome);
    const result = await CancellationScope.nonCancellable(async () => {
      if (outcome !== 'succeeded' && outcome !== 'dry_run' && this.compensations.size > 0) {
        if (!(await this.compensate())) outcome = 'compensation_failed';
      }
      const released = this.locks?.releaseAll();
      const finished = await this.finish(outcome, extra?.());
      await released;
      return finished;
    });
    if (outcome === 'cancelled') throw failure;
    if (outcome === 'failed' || outcome === 'compensation_failed') {
      // input found invalid against the environment (a looser policy) keeps its type: nothing was changed; so
      // does a failed soak (its undo rolled the change back) and a rolled-back cleanup (nothing was deleted): the
      // operator's first question is which of them
      const kept =
        failure instanceof ApplicationFailure && KEPT_FAILURE_TYPES.includes(failure.type ?? '')
          ? failure.type
          : undefined;
      const type = outcome === 'compensation_failed' ? ErrorType.CompensationFailed : ErrorType.RunbookFailed;
      throw ApplicationFailure.create({
        message: `${this.options.runbook} ${outcome}: ${result.error ?? 'see the step list'}`,
        type: kept && outcome === 'failed' ? kept : type,
        nonRetryable: true,
        details: [result],
      });
    }
    return result;
  }

  /** Runs one declared step; a step with an undo is destructive (see StepOptions for when the undo registers). */
  async step<T>(name: S, fn: () => Promise<T>, options: StepOptions<T> = {}): Promise<T> {
    return this.runStep(name, fn, options);
  }

  /** Marks a declared step skipped (for example a read-back not needed in this mode). */
  skip(name: S, why: string): void {
    this.markSkipped(name, why);
  }

  /**
   * The policies this run follows from now on: the environment's approval policy (already tightened by the input)
   * and escalation ladder. Decisions that arrive before the gate opens (an abort) are judged by it too.
   */
  usePolicy(approval: ApprovalPolicy, escalation: EscalationLevel[]): void {
    this.gate.usePolicy(approval);
    this.ladder.levels = escalation;
  }

  /**
   * The approval gate: seals the plan (its hash covers workflow id, run id and plan), waits for a quorum of valid
   * approvals, a rejection, the timeout or an abort. A dry run records the plan and ends here as `dry_run`.
   * `childInput` (the run's raw input): a child run whose parent's approved plan covers exactly this input
   * (parent-cover.ts) passes the gate on that approval; otherwise, and for a run started by hand, it waits as usual.
   */
  approval(plan: Plan, options: { childInput?: unknown } = {}): Promise<void> {
    return this.gates.approval(plan, options);
  }

  /**
   * Per-stage approvals: a runbook that asks again before each stage (the emergency ladder's levels) calls this
   * with the declared step that stands for the stage. The stage's plan is sealed (its hash covers workflow id,
   * run id, stage and plan, so an approval of one stage can never count for another) and recorded in
   * `approval.stages`; then, unless its policy is `automatic`, the run waits for a quorum of that policy. A
   * rejection or timeout ends the run (the undos registered so far run); a dry run ends here. Returns the hash.
   */
  stageApproval(stage: S, plan: Plan, policy: ApprovalPolicy | 'automatic'): Promise<string> {
    return this.gates.stage(stage, plan, policy);
  }

  /**
   * For a runbook that needs no approval (a scheduled backup, a drill in its sandbox): seals and records the plan
   * as approval() does; a dry run ends here as `dry_run`. Its step list names 'seal plan' but no 'approval'.
   */
  seal(plan: Plan): Promise<void> {
    return this.gates.seal(plan);
  }

  /**
   * Escalates to people now (not on a timer): every level of the environment's escalation ladder is notified
   * through its channels, naming its contact; recorded in `escalation` (status, evidence, report) like the timed
   * notices. Never fails the run: undelivered notices are recorded with their error.
   */
  async escalateToPeople(reason: string, details: string): Promise<EscalationRecord[]> {
    return this.ladder.notifyAll(reason, details);
  }

  /**
   * Ends the run as `escalated`: the procedure did all it could without a fix and hands over to people. The
   * changes made so far are left in place on purpose (the emergency ladder's safe configuration): each registered
   * undo is recorded as `kept` with `why` in the status and the evidence, and none runs.
   */
  handOver(message: string, why: string): never {
    this.compensations.keepAll(why, (entry) => this.state.compensations.push(entry));
    throw new RunbookStop('escalated', message);
  }

  /** Runs started before engine v2 replay by its rules; a runbook branching on new behaviour asks this. */
  get isV2(): boolean {
    return this.v2;
  }

  /** Takes one more target for the rest of the run (e.g. the service whose dual writes a repair halts). */
  async lockAlso(target: string): Promise<void> {
    if (!this.locks || this.state.dryRun) return;
    if (this.state.locks?.some((l) => l.target === target && l.environment === this.options.environment)) return;
    await this.locks.acquire(this.options.environment, target, this.options.lockWait);
  }

  /**
   * Publishes a result of the run under `key` (replacing an earlier value): `status` shows it while the run goes
   * on and the result keeps it. Query state only: it issues no command, so it may be called anywhere.
   */
  publish(key: string, value: unknown): void {
    (this.state.results ??= {})[key] = value;
  }

  /**
   * Notify through the environment's channels — the ones named, or every one (never fails the run: delivery
   * problems are logged).
   */
  async notify(subject: string, text: string, channels: string[] = []): Promise<boolean> {
    try {
      await engineActivities.notify({ environment: this.options.environment, subject, text, channels });
      return true;
    } catch (err) {
      log.warn('notification failed', { error: errorMessage(err) });
      return false;
    }
  }

  // ------------------------------------------------------------------------------------------------------

  /** The engine's first step (engine v2, not in a dry run): wait for the target, bounded by lockWait. */
  private async lockTarget(): Promise<void> {
    if (!this.locks) return;
    if (this.state.dryRun) {
      this.markSkipped(LOCK_STEP, 'a dry run changes nothing and takes no lock');
      return;
    }
    const { environment, target } = this.options;
    await this.runStep(LOCK_STEP, () => this.locks!.acquire(environment, target, this.options.lockWait), {
      summarize: () => `${environment}/${target} held`,
    }).then(({ approval }) => {
      // decisions before the runbook's own policy (an early abort) are judged by the environment's
      if (!this.state.approval.policy) this.gate.usePolicy(approval);
    });
  }

  private async runStep<T>(name: string, fn: () => Promise<T>, options: StepOptions<T> = {}): Promise<T> {
    const record = this.record(name);
    record.status = 'running';
    record.startedAt = nowIso();
    record.attempts = Math.max(record.attempts, 1);
    record.destructive = Boolean(options.undo || options.undoBefore);
    this.state.currentStep = name;
    const started = Date.now();
    const { undo, undoBefore } = options;
    if (undoBefore) this.compensations.register(name, undoBefore);
    try {
      const work = fn();
      const result = options.expectedDuration
        ? await this.ladder.around(
            `step "${name}" running past ${options.expectedDuration}`,
            options.expectedDuration,
            work,
          )
        : await work;
      record.status = 'succeeded';
      record.result = options.summarize?.(result);
      if (undo) this.compensations.register(name, () => undo(result));
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

  private markSkipped(name: string, why: string): void {
    const record = this.record(name);
    record.status = 'skipped';
    record.result = why;
  }

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

  /** Runs registered undos in reverse; returns false when any undo still failed after its retries. */
  private async compensate(): Promise<boolean> {
    this.enterPhase('compensate');
    const allUndone = await this.compensations.runAll({
      onStart: (step) => (this.state.currentStep = `undo: ${step}`),
      record: (entry) => {
        this.state.compensations.push(entry);
        if (entry.status === 'succeeded') this.record(entry.step).status = 'compensated';
      },
    });
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
    const evidence = await recordEvidence(this.state, extra);
    upsertSearchAttributes({ Outcome: [outcome] });
    runsFinished.withTags({ runbook: this.options.runbook, outcome }).add(1);
    return { ...this.state, outcome, evidence, ...(extra ? { extra } : {}) };
  }
}
