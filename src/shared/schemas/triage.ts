import { z } from 'zod';
import { baseInput } from './inputs.js';
import { nameSchema } from './primitives.js';

// The decision matrix (seed: feature-flag-dual-write-rollback.md, "Rollback Decision Matrix") as data: each row a
// symptom, how triage measures it (when it can), the runbooks that answer it in order, and its urgency.

export const TRIAGE_URGENCIES = ['immediate', 'high', 'medium', 'low'] as const;

/** How triage sees a symptom by itself. */
export const triageMeasureSchema = z.discriminatedUnion('type', [
  /** present when a target's health check (targets.<t>.health.http; default triage's target) does not answer */
  z.strictObject({ type: z.literal('health'), target: nameSchema.optional() }),
  /**
   * present when the sum of the samples of `metric` (Prometheus text format at `url`) whose labels include
   * `labels` is above `above` (error rate, latency, the `dual_write_inconsistency_detected` gauge)
   */
  z.strictObject({
    type: z.literal('metric'),
    url: z.url(),
    metric: z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, 'must be a Prometheus metric name'),
    labels: z.record(z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/), z.string()).default({}),
    above: z.number(),
  }),
]);
export type TriageMeasure = z.infer<typeof triageMeasureSchema>;

/** One runbook of a row's chain: its CLI name, the target (default: triage's) and its own input fields. */
export const triageChainStepSchema = z.strictObject({
  runbook: nameSchema,
  target: nameSchema.optional(),
  /** the child's input beyond environment, target, requester, reason, incidentTicket (e.g. { mode: … }) */
  input: z.record(z.string(), z.unknown()).default({}),
});

export const triageRowSchema = z.strictObject({
  symptom: nameSchema,
  description: z.string().optional(),
  urgency: z.enum(TRIAGE_URGENCIES),
  measure: triageMeasureSchema.optional(),
  /** empty: monitor only (no change; the plan says so) */
  chain: z.array(triageChainStepSchema).max(10).default([]),
  /** what an operator does beside the chain (investigate root cause …); shown in the plan */
  note: z.string().optional(),
});
export type TriageRow = z.infer<typeof triageRowSchema>;

/**
 * `runbook alert-receiver`: a firing Alertmanager alert whose labels include every label of `match` starts a
 * triage run on `target` with `symptom` (waiting for approval like any run); the first matching rule wins.
 */
export const triageAlertRuleSchema = z.strictObject({
  match: z.record(z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/), z.string()),
  target: nameSchema,
  symptom: nameSchema,
});

export const triageSectionSchema = z.strictObject({
  alerts: z.array(triageAlertRuleSchema).default([]),
  matrix: z
    .array(triageRowSchema)
    .min(1)
    .refine((rows) => new Set(rows.map((r) => r.symptom)).size === rows.length, 'symptom names must be unique'),
});

export const triageInputSchema = z.strictObject({
  ...baseInput,
  /** symptoms the operator reports (names of triage.matrix rows), merged with those triage measures */
  symptoms: z.array(nameSchema).max(20).default([]),
  /** only the operator's symptoms: do not measure */
  noMeasure: z.boolean().default(false),
});
export type TriageInput = z.input<typeof triageInputSchema>;
export type TriageParams = z.output<typeof triageInputSchema>;
