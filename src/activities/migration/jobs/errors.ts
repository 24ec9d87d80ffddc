import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../../shared/constants.js';
import type { JobState } from '../types.js';

/** The states in the order a job moves through them (a keyed copy moving on while it is looked for is still seen). */
export const JOB_STATES: readonly JobState[] = ['queue', 'processing', 'failed', 'completed'];

/** A job whose stored form is not a JSON object: no retry fixes it, and it names the job and where it is. */
export const invalidJob = (id: string, where: string, why: string): ApplicationFailure =>
  ApplicationFailure.nonRetryable(`job ${id} (${where}) is ${why}`, ErrorType.InvalidInput);
