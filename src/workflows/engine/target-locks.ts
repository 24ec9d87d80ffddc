import { condition, getExternalWorkflowHandle, setHandler, workflowInfo } from '@temporalio/workflow';
import { parseDuration } from '../../shared/duration.js';
import { tightenDuration } from '../../shared/input.js';
import { lockGrantedSignal, lockReleaseSignal, type LockRequest } from '../../shared/messages.js';
import type { ApprovalPolicy, LockRecord, RunbookStatus } from '../../shared/types.js';
import { engineActivities } from './activities.js';
import { nowIso, RunbookStop } from './stop.js';

/**
 * The run's side of the per-target locks (workflows/target-lock.ts): ask, wait a bounded time, hold until the
 * run ends — whoever started the run and whichever runbook it is.
 */
export class TargetLocks {
  private readonly granted = new Set<string>();

  constructor(private readonly state: RunbookStatus) {
    state.locks ??= [];
    setHandler(lockGrantedSignal, ({ lockId }) => {
      this.granted.add(lockId);
    });
  }

  /**
   * Holds `target` when this returns; ends the run as target_busy (naming the holder) after the environment's
   * lockWait (or the input's shorter `wait`). Returns the environment's approval policy, read with the lock.
   */
  async acquire(environment: string, target: string, wait?: string): Promise<{ approval: ApprovalPolicy }> {
    const s = this.state;
    const parent = workflowInfo().parent;
    const request: LockRequest = {
      workflowId: s.workflowId,
      runId: s.runId,
      runbook: s.runbook,
      requestedAt: nowIso(),
      // a child of the run holding this target shares its hold (target-lock.ts checks the parent is the holder)
      ...(parent && { parent: { workflowId: parent.workflowId, runId: parent.runId } }),
    };
    const answer = await engineActivities.requestTargetLock({ environment, target, request });
    const { lockId, lockWait, approval } = answer;
    const record: LockRecord = { environment, target, lockId, state: 'waiting', requestedAt: request.requestedAt };
    if (answer.holder) record.holder = answer.holder;
    // recorded before anything can fail, so the end of the run withdraws the request
    s.locks!.push(record);
    const limit = tightenDuration('lockWait', lockWait, wait);
    // held at once when the target was free; otherwise the lock signals this run's turn
    const granted = answer.granted || (await condition(() => this.granted.has(lockId), parseDuration(limit)));
    if (!granted) {
      record.state = 'gave_up';
      const h = record.holder;
      const holder = h
        ? `run ${h.workflowId} (${h.runbook}, run id ${h.runId}${h.since ? `, since ${h.since}` : ''})`
        : 'another run';
      throw new RunbookStop('target_busy', `${environment}/${target} is held by ${holder}; waited ${limit}`);
    }
    record.state = 'held';
    record.grantedAt = nowIso();
    if (answer.shared && answer.holder) record.sharedWith = answer.holder;
    delete record.holder;
    return { approval };
  }

  /**
   * Releases every lock held and withdraws every request still waiting (the run is ending). The records are final
   * at once (the evidence states them); the signals go out with the run's next commands and are awaited by the
   * returned promise, so releasing costs the run no extra round trip.
   */
  releaseAll(): Promise<void> {
    const open = (this.state.locks ?? []).filter((record) => record.state !== 'released');
    // a held target is released; a request still waiting is withdrawn
    for (const record of open) record.state = record.state === 'held' ? 'released' : 'gave_up';
    // a hold shared with the parent stays the parent's: nothing to signal
    const own = open.filter((record) => !record.sharedWith);
    const release = { workflowId: this.state.workflowId, runId: this.state.runId };
    return Promise.all(
      own.map((record) =>
        getExternalWorkflowHandle(record.lockId)
          .signal(lockReleaseSignal, release)
          // the lock workflow already ended: nothing is held
          .catch(() => undefined),
      ),
    ).then(() => undefined);
  }
}
