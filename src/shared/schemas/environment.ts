import { z } from 'zod';
import { approvalPolicySchema, DEFAULT_ESCALATION, escalationLevelSchema } from './approval.js';
import { durationSchema, nameSchema } from './primitives.js';
import { flagNamesSchema, notificationChannelSchema, targetSchema } from './targets.js';
import { triageSectionSchema } from './triage.js';

// An environment file (`environments/<name>.yaml`) and the types of its parts.

/**
 * Where a detected problem's notification goes by its severity (seed, dual-write rollback, "Escalation Path"):
 * warning → the ops channel; critical → the critical channel and a page. Channel names are keys of
 * `notifications`; an empty `channels` list means every channel of the environment (what rb.notify does), an empty
 * `page` list means no page is sent (the run says so).
 */
export const severityRoutingSchema = z.strictObject({
  warning: z.strictObject({ channels: z.array(nameSchema).default([]) }).prefault({}),
  critical: z
    .strictObject({ channels: z.array(nameSchema).default([]), page: z.array(nameSchema).default([]) })
    .prefault({}),
});
export type SeverityRouting = z.infer<typeof severityRoutingSchema>;

export const environmentSchema = z
  .strictObject({
    name: nameSchema.optional(),
    description: z.string().optional(),
    approval: approvalPolicySchema.prefault({}),
    /** how long a run waits for another run on the same target to finish before it ends as target_busy */
    lockWait: durationSchema.default('15m').transform(String),
    /** trusted Ed25519 keys of the workers that sign evidence (`ed25519:…` or a file holding that line) */
    evidence: z.strictObject({ workerKeys: z.array(z.string().min(1)).default([]) }).prefault({}),
    escalation: z.array(escalationLevelSchema).min(1).default(DEFAULT_ESCALATION),
    notifications: z.record(nameSchema, notificationChannelSchema).default({ console: { type: 'log' } }),
    severityRouting: severityRoutingSchema.prefault({}),
    /** the decision matrix the triage runbook follows (symptom → measurement, chain of runbooks, urgency) */
    triage: triageSectionSchema.optional(),
    targets: z
      .record(nameSchema, targetSchema)
      .refine((t) => Object.keys(t).length > 0, 'must define at least one target'),
  })
  .superRefine((env, ctx) => {
    const routes = [
      ['warning', 'channels', env.severityRouting.warning.channels],
      ['critical', 'channels', env.severityRouting.critical.channels],
      ['critical', 'page', env.severityRouting.critical.page],
    ] as const;
    for (const [severity, field, names] of routes)
      for (const [i, name] of names.entries())
        if (!(name in env.notifications))
          ctx.addIssue({
            code: 'custom',
            path: ['severityRouting', severity, field, i],
            message: `no notification channel "${name}" (notifications: ${Object.keys(env.notifications).join(', ')})`,
          });
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
