import { z } from 'zod';
import { approvalPolicySchema, DEFAULT_ESCALATION, escalationLevelSchema } from './approval.js';
import { durationSchema, nameSchema } from './primitives.js';
import { flagNamesSchema, notificationChannelSchema, targetSchema } from './targets.js';
import { triageSectionSchema } from './triage.js';

// An environment file (`environments/<name>.yaml`) and the types of its parts.

export const environmentSchema = z.strictObject({
  name: nameSchema.optional(),
  description: z.string().optional(),
  approval: approvalPolicySchema.prefault({}),
  /** how long a run waits for another run on the same target to finish before it ends as target_busy */
  lockWait: durationSchema.default('15m').transform(String),
  /** trusted Ed25519 keys of the workers that sign evidence (`ed25519:…` or a file holding that line) */
  evidence: z.strictObject({ workerKeys: z.array(z.string().min(1)).default([]) }).prefault({}),
  escalation: z.array(escalationLevelSchema).min(1).default(DEFAULT_ESCALATION),
  notifications: z.record(nameSchema, notificationChannelSchema).default({ console: { type: 'log' } }),
  /** the decision matrix the triage runbook follows (symptom → measurement, chain of runbooks, urgency) */
  triage: triageSectionSchema.optional(),
  targets: z
    .record(nameSchema, targetSchema)
    .refine((t) => Object.keys(t).length > 0, 'must define at least one target'),
});
export type EnvironmentFile = z.infer<typeof environmentSchema>;
export type TargetConfig = EnvironmentFile['targets'][string];
export type FlagStoreConfig = NonNullable<TargetConfig['flags']>['store'];
export type ServiceConfig = NonNullable<TargetConfig['service']>;
export type HealthConfig = NonNullable<TargetConfig['health']>;
export type LogSourceConfig = NonNullable<HealthConfig['logs']>;
export type DualWriteConfig = NonNullable<TargetConfig['dualWrite']>;
export type NotificationChannel = EnvironmentFile['notifications'][string];
export type FlagKey = keyof z.infer<typeof flagNamesSchema>;
