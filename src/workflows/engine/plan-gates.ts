import { metricMeter, patched, workflowInfo } from '@temporalio/workflow';
import { RUNBOOKS } from '../../shared/runbooks.js';
import type { ApprovalPolicy, ApprovalStage, Phase, Plan, RunbookStatus, StepRecord } from '../../shared/types.js';
import { engineActivities } from './activities.js';
import type { ApprovalGate } from './approval-gate.js';
import type { EscalationLadder } from './escalation.js';
import { coveredByParent, describeCover } from './parent-cover.js';
import type { StepOptions } from './runbook.js';
import { errorMessage, nowIso, RunbookStop } from './stop.js';

// the workflow meter has no up-down counter: approvals waiting = waits_started - waits_ended
const approvalWaitsStarted = metricMeter.createCounter(
  'runbook_approval_waits_started',
  'runs',
  'Approval gates opened',
);
const approvalWaitsEnded = metricMeter.createCounter('runbook_approval_waits_ended', 'runs', 'Approval gates closed');

/** What the plan gates use of the run they belong to. */
export interface GateHost {
  state: RunbookStatus;
  v2: boolean;
  runbook: string;
  gate: ApprovalGate;
  ladder: EscalationLadder;
  runStep<T>(name: string, fn: () => Promise<T>, options?: StepOptions<T>): Promise<T>;
  record(name: string): StepRecord;
  enterPhase(phase: Phase): void;
}

/**
 * Sealing plans and waiting at gates, for Runbook (see its approval(), stageApproval() and seal()): the run's one
 * plan and gate, and the stages of a run with per-stage approvals, each with its own plan, hash and policy.
 */
export class PlanGates {
  constructor(private readonly run: GateHost) {}

  async approval(plan: Plan, options: { childInput?: unknown } = {}): Promise<void> {
    const { state, gate, ladder } = this.run;
    await this.sealPlan(plan, 'dry run: stopped at the approval gate, nothing changed');
    if (!state.approval.policy) throw new Error('approval(): call usePolicy() first (the runbook has no policy)');
    let covered: string | undefined;
    await this.waitAsStep(
      'approval',
      async () => {
        // a child whose plan is the decision (RUNBOOKS[…].ownApproval: the rows it deletes, the backup it restores)
        // waits for its own approval of that plan, whatever its parent's plan lists; runs that asked their parent
        // before this rule (no marker in their history) replay as they ran
        const own = workflowInfo().parent ? RUNBOOKS[this.run.runbook]?.ownApproval : undefined;
        if (own && (options.childInput === undefined || patched('child-own-approval'))) {
          state.approval.parentCover = { covered: false, why: `${this.run.runbook} needs its own approval: ${own}` };
          await gate.wait(ladder);
          return;
        }
        // a child run whose parent's approved plan covers its exact input passes on that approval (parent-cover.ts)
        const cover = await coveredByParent(state, options.childInput);
        if (cover?.covered) covered = describeCover(cover);
        else await gate.wait(ladder);
      },
      () => state.approval.policy!.timeout,
      () => covered ?? `approved by ${state.approval.approvedBy.join(', ')}`,
    );
  }

  async stage(stage: string, plan: Plan, policy: ApprovalPolicy | 'automatic'): Promise<string> {
    const { state, v2, gate, ladder } = this.run;
    if (!v2) throw new Error('stageApproval(): per-stage approvals need engine v2');
    const stages = (state.approval.stages ??= []);
    if (stages.some((x) => x.stage === stage)) throw new Error(`stageApproval(): stage "${stage}" was sealed already`);
    const { workflowId, runId } = state;
    const { planHash } = await this.run.runStep(
      stage,
      () => engineActivities.sealStagePlan({ workflowId, runId, stage, plan }),
      { summarize: (r) => `plan ${r.planHash.slice(0, 12)} sealed` },
    );
    const entry: ApprovalStage = {
      stage,
      plan,
      planHash,
      policy,
      status: policy === 'automatic' ? 'automatic' : 'waiting',
      approvedBy: [],
      sealedAt: nowIso(),
    };
    stages.push(entry);
    if (state.dryRun) {
      entry.status = 'ended';
      throw new RunbookStop('dry_run', `dry run: stopped at the approval of "${stage}", nothing changed`);
    }
    if (policy === 'automatic') {
      entry.decidedAt = entry.sealedAt;
      this.run.record(stage).result = `automatic (no approval needed), plan ${planHash.slice(0, 12)}`;
      return planHash;
    }
    await this.waitAsStep(
      stage,
      () => gate.waitStage(entry, policy, ladder),
      () => policy.timeout,
      () => `approved by ${entry.approvedBy.join(', ')}, plan ${planHash.slice(0, 12)}`,
    );
    return planHash;
  }

  async seal(plan: Plan): Promise<void> {
    await this.sealPlan(plan, 'dry run: stopped after planning, nothing changed');
    this.run.enterPhase('execute');
  }

  private async sealPlan(plan: Plan, dryRunMessage: string): Promise<void> {
    const { state, v2 } = this.run;
    const { workflowId, runId } = state;
    const { planHash } = await this.run.runStep(
      'seal plan',
      () => (v2 ? engineActivities.sealRunPlan({ workflowId, runId, plan }) : engineActivities.sealPlan(plan)),
      { summarize: (r) => `plan ${r.planHash.slice(0, 12)}` },
    );
    state.plan = plan;
    state.planHash = planHash;
    if (state.dryRun) throw new RunbookStop('dry_run', dryRunMessage);
  }

  /** A gate's wait as its declared step: running while it waits, then approved, or failed with why. */
  private async waitAsStep(
    name: string,
    wait: () => Promise<void>,
    timeout: () => string,
    approved: () => string,
  ): Promise<void> {
    const { state, runbook } = this.run;
    this.run.enterPhase('approval');
    const record = this.run.record(name);
    record.status = 'running';
    record.startedAt = nowIso();
    record.attempts = 1;
    state.currentStep = name;
    approvalWaitsStarted.withTags({ runbook }).add(1);
    try {
      await wait();
      record.status = 'succeeded';
      record.result = approved();
    } catch (err) {
      record.status = 'failed';
      const timedOut = err instanceof RunbookStop && err.outcome === 'timed_out';
      record.error = timedOut ? `no quorum within ${timeout()}` : errorMessage(err);
      throw err;
    } finally {
      record.endedAt = nowIso();
      if (state.currentStep === name) state.currentStep = undefined;
      approvalWaitsEnded.withTags({ runbook }).add(1);
    }
    this.run.enterPhase('execute');
  }
}
