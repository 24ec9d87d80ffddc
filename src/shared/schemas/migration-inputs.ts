import { z } from 'zod';
import { baseInput } from './inputs.js';
import { durationSchema, nameSchema } from './primitives.js';
import { MIGRATION_PHASES } from './migration.js';

// Inputs of the backend-migration runbooks: they name a target, a phase, a backend, never paths or data.

/** A job's id: its spool file is `<id>.json`; in a jobs table, the id column. */
export const jobIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'must be a job id (letters, digits, . _ -; no path)');

/** a backend name; checked against the environment's `migration.backends` by the workflow */
const backend = nameSchema;

export const backendPhaseSwitchInputSchema = z
  .strictObject({
    ...baseInput,
    /** the phase to move to (forward or back) */
    to: z.enum(MIGRATION_PHASES).optional(),
    /** cut-over: the share of jobs routed to the new backend, 0–100 (progressive: stepped through the environment's cutoverSteps) */
    percent: z.number().int().min(0).max(100).optional(),
    /** roll back to a named checkpoint of the environment (seed 1.1–3.2) instead of moving to a phase */
    checkpoint: z
      .string()
      .regex(/^\d+\.\d+$/, 'must be a checkpoint number such as 2.1')
      .optional(),
    /** soak window after each forward step (at least the environment's soak.window) */
    soakWindow: durationSchema.transform(String).optional(),
  })
  .superRefine((v, ctx) => {
    if ((v.to === undefined) === (v.checkpoint === undefined))
      ctx.addIssue({ code: 'custom', path: ['to'], message: 'give exactly one of to (a phase) and checkpoint' });
    if (v.to === 'cut-over' && v.percent === undefined)
      ctx.addIssue({ code: 'custom', path: ['percent'], message: 'cut-over needs a percent (0-100)' });
    if (v.percent !== undefined && v.to !== 'cut-over')
      ctx.addIssue({ code: 'custom', path: ['percent'], message: 'only cut-over takes a percent' });
  });
export type BackendPhaseSwitchInput = z.input<typeof backendPhaseSwitchInputSchema>;
export type BackendPhaseSwitchParams = z.output<typeof backendPhaseSwitchInputSchema>;

export const REPLAY_KINDS = ['failed', 'stuck', 'incomplete', 'gap'] as const;
export type ReplayKind = (typeof REPLAY_KINDS)[number];

export const jobReplayInputSchema = z.strictObject({
  ...baseInput,
  /** what to detect: failed jobs, jobs stuck in processing, completed jobs without output, processing-log gaps */
  kinds: z
    .array(z.enum(REPLAY_KINDS))
    .min(1)
    .default([...REPLAY_KINDS]),
  /** failed jobs since this time (default: the environment's marker file, else all) */
  since: z.iso.datetime({ offset: true }).optional(),
  /** replay exactly these jobs (corruption recovery passes the affected ones); detection is skipped */
  jobs: z.array(jobIdSchema).max(100_000).optional(),
  /** route the replayed jobs to this backend; the previous setting is restored afterwards */
  backend: backend.optional(),
  /** replay at most this many jobs */
  limit: z.number().int().min(1).max(1_000_000).optional(),
  /** tighten the environment's pacing: smaller batches, fewer in flight, a longer pause */
  batch: z.number().int().min(1).max(10_000).optional(),
  concurrency: z.number().int().min(1).max(64).optional(),
  pace: durationSchema.transform(String).optional(),
  /** stuck threshold (at least the environment's stuckAfter) */
  stuckAfter: durationSchema.transform(String).optional(),
});
export type JobReplayInput = z.input<typeof jobReplayInputSchema>;
export type JobReplayParams = z.output<typeof jobReplayInputSchema>;

export const emergencyLadderInputSchema = z.strictObject({
  ...baseInput,
  /** start at this level (1 restart, 2 last known good configuration, 3 emergency configuration) */
  startLevel: z.number().int().min(1).max(3).default(1),
});
export type EmergencyLadderInput = z.input<typeof emergencyLadderInputSchema>;
export type EmergencyLadderParams = z.output<typeof emergencyLadderInputSchema>;

export const outputRecoveryInputSchema = z.strictObject({
  ...baseInput,
  /** only outputs written since this time */
  since: z.iso.datetime({ offset: true }).optional(),
  /** replay the affected jobs that no backup could restore (a child run of job-replay; default true) */
  replay: z.boolean().default(true),
  /** backend override for that replay */
  backend: backend.optional(),
});
export type OutputRecoveryInput = z.input<typeof outputRecoveryInputSchema>;
export type OutputRecoveryParams = z.output<typeof outputRecoveryInputSchema>;
