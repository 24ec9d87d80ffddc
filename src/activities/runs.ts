import { Context } from '@temporalio/activity';
import { WithStartWorkflowOperation, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../shared/constants.js';
import { lockAcquireUpdate, statusQuery, targetLockId, type LockAnswer, type LockRequest } from '../shared/messages.js';
import type { ApprovalPolicy, ParentCover } from '../shared/types.js';
import { coverDigest, type ChildCover } from './cover.js';
import { approvalPolicyOf, loadTarget, withEnvironmentErrors } from './environment.js';

export interface RunDeps {
  environmentsDir: string;
  /** Temporal, for what only the server knows: other runs and the lock workflows */
  client: Client;
}

/** Activities about runs themselves: target locks (as Temporal's mutex sample does) and who may do what. */
export const createRunActivities = (deps: RunDeps) => ({
  /**
   * Asks the target's lock workflow for the target (update-with-start: it starts when no run holds the target) and
   * returns its answer — held now, or queued behind whom — with how long the environment lets a run wait.
   * Idempotent: the lock answers a request it already has the same way.
   */
  async requestTargetLock(input: {
    environment: string;
    target: string;
    request: LockRequest;
  }): Promise<{ lockId: string; lockWait: string; approval: ApprovalPolicy } & LockAnswer> {
    const t = await withEnvironmentErrors(() => loadTarget(deps.environmentsDir, input.environment, input.target));
    const lockId = targetLockId(input.environment, input.target);
    const answer = await deps.client.workflow.executeUpdateWithStart(lockAcquireUpdate, {
      args: [input.request],
      startWorkflowOperation: new WithStartWorkflowOperation('targetLock', {
        workflowId: lockId,
        taskQueue: Context.current().info.taskQueue,
        args: [{ lockId }],
        workflowIdConflictPolicy: 'USE_EXISTING',
      }),
    });
    return { lockId, lockWait: t.config.lockWait, approval: approvalPolicyOf(t), ...answer };
  },

  /** Whether that run is still open (a lock holder that was terminated never releases its lock). */
  async isRunOpen(input: { workflowId: string; runId: string }): Promise<{ open: boolean }> {
    try {
      const d = await deps.client.workflow.getHandle(input.workflowId, input.runId).describe();
      return { open: d.status.name === 'RUNNING' };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return { open: false };
      throw err;
    }
  },

  /**
   * A repair partition runs only as the child of an approved dual-write rollback that is executing this very plan:
   * the parent must be a running dualWriteRollback on the same target, past its approval gate with a quorum, in its
   * execute step, whose sealed plan names this plan file's digest.
   */
  async authorizeRepairPartition(input: {
    parent?: { workflowId: string; runId: string };
    environment: string;
    target: string;
    planSha256: string;
  }): Promise<{ parent: string; approvedBy: string[] }> {
    const refuse = (why: string) =>
      ApplicationFailure.nonRetryable(`repair partition refused: ${why}; nothing was changed`, ErrorType.NotAuthorized);
    if (!input.parent) throw refuse('it was not started by a dualWriteRollback run (no parent workflow)');
    const handle = deps.client.workflow.getHandle(input.parent.workflowId, input.parent.runId);
    const parent = await handle.describe().catch((err: unknown) => {
      if (err instanceof WorkflowNotFoundError) throw refuse(`parent ${input.parent!.workflowId} not found`);
      throw err;
    });
    if (parent.type !== 'dualWriteRollback')
      throw refuse(`parent ${parent.workflowId} is a ${parent.type}, not a dualWriteRollback`);
    if (parent.status.name !== 'RUNNING') throw refuse(`parent ${parent.workflowId} is ${parent.status.name}`);
    const s = await handle.query(statusQuery);
    const gate = s.steps.find((step) => step.name === 'approval');
    const quorum = s.approval.policy?.quorum ?? Infinity;
    if (gate?.status !== 'succeeded' || s.approval.approvedBy.length < quorum)
      throw refuse('the parent run is not approved');
    if (s.environment !== input.environment || s.target !== input.target) {
      throw refuse(`the parent repairs ${s.environment}/${s.target}, not ${input.environment}/${input.target}`);
    }
    const planned = (s.plan?.details as { plan?: { sha256?: string } } | undefined)?.plan?.sha256;
    if (planned !== input.planSha256)
      throw refuse(`the parent's approved plan is ${planned ?? 'none'}, not ${input.planSha256}`);
    if (s.currentStep !== 'execute')
      throw refuse(`the parent is not executing (current step: ${s.currentStep ?? 'none'})`);
    return { parent: `${parent.workflowId} (${parent.runId})`, approvedBy: s.approval.approvedBy };
  },

  /**
   * Whether a child run's approval is covered by its parent's (engine: rb.approval(plan, { childInput })): the
   * parent — workflowInfo().parent of the child, which nobody sets from outside — is running on the same
   * environment and target, past its approval gate with a quorum, and its sealed plan lists this child's workflow
   * type with the digest of exactly this input under `details.covers` (src/activities/cover.ts). Anything else:
   * not covered (the child then waits for its own approval), with why.
   */
  async parentCovers(input: {
    parent: { workflowId: string; runId: string };
    environment: string;
    target: string;
    workflowType: string;
    input: unknown;
  }): Promise<ParentCover> {
    const no = (why: string): ParentCover => ({ covered: false, why });
    const handle = deps.client.workflow.getHandle(input.parent.workflowId, input.parent.runId);
    const parent = await handle.describe().catch((err: unknown) => {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    });
    if (!parent) return no(`parent ${input.parent.workflowId} not found`);
    if (parent.status.name !== 'RUNNING') return no(`parent ${parent.workflowId} is ${parent.status.name}`);
    const s = await handle.query(statusQuery);
    // the parent's own target, or another target of the environment it holds for its children (rb.lockAlso)
    const holds = (s.locks ?? []).some(
      (l) => l.environment === input.environment && l.target === input.target && l.state === 'held',
    );
    if (s.environment !== input.environment || (s.target !== input.target && !holds))
      return no(`the parent acts on ${s.environment}/${s.target}, not ${input.environment}/${input.target}`);
    const gate = s.steps.find((step) => step.name === 'approval');
    if (gate?.status !== 'succeeded' || s.approval.approvedBy.length < (s.approval.policy?.quorum ?? Infinity))
      return no('the parent run is not approved');
    const covers = (s.plan?.details as { covers?: ChildCover[] } | undefined)?.covers ?? [];
    const digest = coverDigest(input.workflowType, input.input);
    if (!covers.some((c) => c.workflowType === input.workflowType && c.digest === digest))
      return no(
        `the parent's approved plan does not cover this ${input.workflowType} input (sha256 ${digest.slice(0, 12)})`,
      );
    return {
      covered: true,
      parent: { workflowId: parent.workflowId, runId: parent.runId, runbook: s.runbook },
      planHash: s.planHash ?? '',
      approvedBy: s.approval.approvedBy,
      digest,
    };
  },
});
