import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { DecisionSignal } from './decisions.js';
import type { LockHolder, RunbookStatus } from './types.js';

/** Signal and query names are the wire API: `temporal workflow signal --name approve`. */
export const approveSignal = defineSignal<[DecisionSignal]>('approve');
export const rejectSignal = defineSignal<[DecisionSignal]>('reject');
export const abortSignal = defineSignal<[DecisionSignal]>('abort');
export const statusQuery = defineQuery<RunbookStatus>('status');
/** job-replay: stop starting new batches (those in flight finish) / go on; `temporal workflow signal --name pause` */
export const pauseSignal = defineSignal<[{ by?: string; reason?: string }?]>('pause');
export const resumeSignal = defineSignal<[{ by?: string }?]>('resume');

/** A requeue child's totals so far (across its continue-as-new generations): it replaces the parent's copy. */
export interface ReplayProgress {
  requeued: number;
  already: number;
  vanished: number;
  moved: number;
  /** plan lines done */
  done: number;
  generation: number;
  vanishedIds: string[];
  movedIds: string[];
}
/** requeue child → job-replay run */
export const replayProgressSignal = defineSignal<[ReplayProgress]>('replay-progress');

/** A run asking for a target (sent with update-with-start to the target's lock workflow). */
export interface LockRequest {
  workflowId: string;
  runId: string;
  runbook: string;
  requestedAt: string;
  /** the requesting run's parent (workflowInfo().parent): when it holds the target, the child shares its hold */
  parent?: { workflowId: string; runId: string };
}
export interface LockState {
  lockId: string;
  holder?: LockHolder;
  queue: LockRequest[];
}
/** What the lock answers a request: the target is the run's now, or it is queued behind `holder`. */
export interface LockAnswer {
  granted: boolean;
  /** granted because the requester's parent holds the target (the holder stays the parent) */
  shared?: boolean;
  holder?: LockHolder;
  position?: number;
}
/** run → lock (update-with-start: the answer comes back at once, no signal round trip when the target is free) */
export const lockAcquireUpdate = defineUpdate<LockAnswer, [LockRequest]>('lock-acquire');
/** run → lock: releases the target, or withdraws a request still queued */
export const lockReleaseSignal = defineSignal<[{ workflowId: string; runId: string }]>('lock-release');
/** lock → run (a queued request's turn has come) */
export const lockGrantedSignal = defineSignal<[{ lockId: string }]>('lock-granted');
export const lockStatusQuery = defineQuery<LockState>('lock-status');

/** The lock workflow of one target; its id is the lock. */
export const targetLockId = (environment: string, target: string): string => `target-lock--${environment}--${target}`;
