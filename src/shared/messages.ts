import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { AbortSignal, ApprovalSignal, RejectSignal, RunbookStatus } from './types.js';

/** Signal and query names are the wire API: `temporal workflow signal --name approve`. */
export const approveSignal = defineSignal<[ApprovalSignal]>('approve');
export const rejectSignal = defineSignal<[RejectSignal]>('reject');
export const abortSignal = defineSignal<[AbortSignal]>('abort');
export const statusQuery = defineQuery<RunbookStatus>('status');
