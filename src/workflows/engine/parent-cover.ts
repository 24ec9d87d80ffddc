import { workflowInfo } from '@temporalio/workflow';
import type { ParentCover, RunbookStatus } from '../../shared/types.js';
import { engineActivities } from './activities.js';

/**
 * A child run's approval through its parent's: only a run that has a parent (workflowInfo().parent — set by
 * Temporal for a child, never by an input) asks, and only when the runbook passes its raw input. The answer
 * (an activity: its result is in history) says whether the parent, running and approved on the same target,
 * lists this child's exact input digest under its plan's `details.covers`. Recorded in the status either way.
 */
export async function coveredByParent(state: RunbookStatus, childInput: unknown): Promise<ParentCover | undefined> {
  const info = workflowInfo();
  if (!info.parent || childInput === undefined) return undefined;
  const cover = await engineActivities.parentCovers({
    parent: { workflowId: info.parent.workflowId, runId: info.parent.runId },
    environment: state.environment,
    target: state.target,
    workflowType: info.workflowType,
    input: childInput,
  });
  state.approval.parentCover = cover;
  return cover;
}

export const describeCover = (c: ParentCover & { covered: true }): string =>
  `covered by the approved plan of ${c.parent.runbook} ${c.parent.workflowId} (plan ${c.planHash.slice(0, 12)}, approved by ${c.approvedBy.join(', ')})`;
