import { z } from 'zod';
import { baseInput } from './inputs.js';

// Input of test-data-cleanup: it names a target and a limit, never tables, predicates or data.

export const testDataCleanupInputSchema = z.strictObject({
  ...baseInput,
  /** refuse a selection larger than this (at most the environment's maxRows) */
  maxRows: z.number().int().min(1).optional(),
});
export type TestDataCleanupInput = z.input<typeof testDataCleanupInputSchema>;
