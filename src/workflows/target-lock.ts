import {
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import {
  lockAcquireUpdate,
  lockGrantedSignal,
  lockReleaseSignal,
  lockStatusQuery,
  type LockAnswer,
  type LockRequest,
} from '../shared/messages.js';
import type { LockHolder } from '../shared/types.js';
import { engineActivities } from './engine/activities.js';

export interface TargetLockInput {
  lockId: string;
  /** carried across continue-as-new */
  holder?: LockHolder;
  queue?: LockRequest[];
}

/** how often a holder that went silent is checked (a terminated run never releases) */
const HOLDER_CHECK = '1 minute';
const MAX_HISTORY = 2000;

const holderOpen = async (h: LockHolder): Promise<boolean> =>
  (await engineActivities.isRunOpen({ workflowId: h.workflowId, runId: h.runId })).open;

const same = (a: { workflowId: string; runId: string } | undefined, b: { workflowId: string; runId: string }) =>
  Boolean(a && a.workflowId === b.workflowId && a.runId === b.runId);
const isRequest = (r: unknown): r is LockRequest => {
  const x = r as Partial<LockRequest> | null;
  const parentOk =
    x?.parent === undefined || (typeof x.parent?.workflowId === 'string' && typeof x.parent.runId === 'string');
  return Boolean(
    x && typeof x.workflowId === 'string' && typeof x.runId === 'string' && typeof x.runbook === 'string' && parentOk,
  );
};

/**
 * One target, one runbook at a time (after Temporal's mutex sample): runs ask with update-with-start; the lock
 * gives the target to one run at once, answers the others with their place in the queue and who holds it, and
 * signals the next its turn; it ends when nobody holds or waits. A holder that ended without
 * releasing (terminated) is noticed and skipped.
 */
export async function targetLock(input: TargetLockInput): Promise<void> {
  let holder = input.holder;
  const queue: LockRequest[] = [...(input.queue ?? [])];
  let changes = 0;
  /** someone queued: check the holder is still there (a terminated run never releases) */
  let checkHolder = false;

  /** Takes the request: the target at once when it is free and nobody waits, else a place in the queue. */
  const acquire = (r: LockRequest): LockAnswer => {
    changes++;
    if (same(holder, r)) return { granted: true };
    // a child of the holding run acts within its parent's hold (the holder stays the parent); the request names
    // the parent from workflowInfo().parent, which a run started by hand does not have
    if (r.parent && same(holder, r.parent)) return { granted: true, shared: true, holder };
    if (!holder && queue.length === 0) {
      holder = { ...r, since: new Date().toISOString() };
      return { granted: true };
    }
    let position = queue.findIndex((q) => same(q, r)) + 1;
    if (position === 0) position = queue.push(r);
    checkHolder = true;
    return { granted: false, holder, position };
  };
  setHandler(lockAcquireUpdate, acquire, {
    validator: (r) => {
      if (!isRequest(r)) throw new Error('not a lock request: { workflowId, runId, runbook, requestedAt }');
    },
  });
  setHandler(lockReleaseSignal, (release) => {
    if (!release || typeof release.workflowId !== 'string') return;
    changes++;
    if (same(holder, release)) holder = undefined;
    else {
      const i = queue.findIndex((q) => same(q, release));
      if (i >= 0) queue.splice(i, 1);
    }
  });
  setHandler(lockStatusQuery, () => ({ lockId: input.lockId, holder, queue }));

  const grant = async (to: { workflowId: string; runId: string }): Promise<boolean> => {
    try {
      await getExternalWorkflowHandle(to.workflowId, to.runId).signal(lockGrantedSignal, { lockId: input.lockId });
      return true;
    } catch {
      return false; // the run is gone (ended while it waited): the next one gets the target
    }
  };

  for (;;) {
    while (!holder && queue.length > 0) {
      const next = queue.shift()!;
      if (await grant(next)) holder = { ...next, since: new Date().toISOString() };
    }
    // someone new waits: make sure the holder is still there (a terminated run never releases)
    if (holder && checkHolder) {
      checkHolder = false;
      if (!(await holderOpen(holder))) {
        holder = undefined;
        continue;
      }
    }
    if (!holder && queue.length === 0) {
      await condition(allHandlersFinished);
      if (!holder && queue.length === 0) return;
      continue;
    }
    const seen = changes;
    const changed = await condition(() => changes !== seen, HOLDER_CHECK);
    if (!changed && holder && !(await holderOpen(holder))) holder = undefined;
    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historyLength > MAX_HISTORY) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof targetLock>({ lockId: input.lockId, holder, queue });
    }
  }
}
