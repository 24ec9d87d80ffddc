import { z } from 'zod';
import { boundedDuration, durationSchema, nameSchema, personSchema } from './primitives.js';

// Runbook inputs: they name targets and choices, never credentials or data.

export const baseInput = {
  environment: nameSchema,
  target: nameSchema,
  requester: personSchema,
  reason: z.string().trim().min(1).max(2000).default('not given'),
  incidentTicket: z.string().max(500).optional(),
  dryRun: z.boolean().default(false),
  /** tighten the environment's approval policy for this run (never loosen it: a looser value is InvalidInput) */
  approval: z
    .strictObject({
      quorum: z.number().int().min(1).max(10).optional(),
      timeout: durationSchema.transform(String).optional(),
    })
    .optional(),
  /** wait at most this long for another run on the target (at most the environment's lockWait) */
  lockWait: durationSchema.transform(String).optional(),
};

export const FEATURE_FLAG_MODES = [
  'disable-dual-write',
  'disable-strict-mode',
  'block-legacy-writes',
  /** the matrix's "re-enable": dual write back on, soak (health, dual writes happen again), verify */
  'enable-dual-write',
] as const;
export const featureFlagRollbackInputSchema = z.strictObject({
  ...baseInput,
  mode: z.enum(FEATURE_FLAG_MODES),
  /**
   * how long no new `dual_write_scheduled` lines must appear (enable-dual-write: how long the soak watches health);
   * defaults to the target's quietWindow
   */
  quietWindow: boundedDuration({ min: '1s' }).transform(String).optional(),
});
export type FeatureFlagRollbackInput = z.input<typeof featureFlagRollbackInputSchema>;
export type FeatureFlagRollbackParams = z.output<typeof featureFlagRollbackInputSchema>;

export const DUAL_WRITE_POLICIES = ['postgres-authoritative', 'store-authoritative', 'newest-wins'] as const;
export const dualWriteRollbackInputSchema = z.strictObject({
  ...baseInput,
  /** which copy wins: side a ("postgres"), side b ("store"), or per object the newer one */
  policy: z.enum(DUAL_WRITE_POLICIES),
  batchSize: z.number().int().min(1).max(100_000).optional(),
  parallelism: z.number().int().min(1).max(64).optional(),
  /** partitions continue-as-new at this many history events (default 10 000, or when the server suggests) */
  maxPartitionHistory: z.number().int().min(10).optional(),
});
export type DualWriteRollbackInput = z.input<typeof dualWriteRollbackInputSchema>;

/** dual-write-check: detection only (the schedule's runs); nothing to choose beyond the target */
export const dualWriteCheckInputSchema = z.strictObject({ ...baseInput });
export type DualWriteCheckInput = z.input<typeof dualWriteCheckInputSchema>;
export type DualWriteRollbackParams = z.output<typeof dualWriteRollbackInputSchema>;
