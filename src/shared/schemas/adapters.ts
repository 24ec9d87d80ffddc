import { z } from 'zod';
import { durationSchema, envVarNameSchema, k8sNameSchema } from './primitives.js';

// The adapters a target is built from: where flags live, how a service is stopped and started, where its logs are.

export const flagStoreSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('env-file'), path: z.string().min(1) }),
  z.strictObject({
    type: z.literal('kubernetes'),
    deployment: k8sNameSchema,
    namespace: k8sNameSchema,
    container: k8sNameSchema.optional(),
    /** environment variable holding the kubeconfig path, if not the default */
    kubeconfigEnv: envVarNameSchema.optional(),
  }),
  /**
   * scenario 1, method 2 (persistent): the flags are data keys of a ConfigMap the Deployment reads
   * (`kubectl get/patch configmap`); the service (kubernetes) is restarted to apply them
   */
  z.strictObject({
    type: z.literal('kubernetes-configmap'),
    configMap: k8sNameSchema,
    namespace: k8sNameSchema,
    kubeconfigEnv: envVarNameSchema.optional(),
  }),
]);

export const serviceSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('process'),
    pidFile: z.string().min(1),
    command: z.array(z.string().min(1)).min(1),
    cwd: z.string().optional(),
    logFile: z.string().optional(),
    /** how `reload` is done: SIGHUP (re-read configuration) or a full restart */
    reload: z.enum(['sighup', 'restart']).default('sighup'),
    stopTimeout: durationSchema.default('10s').transform(String),
    /**
     * The managed process does not inherit the worker's environment (its credentials): it gets PATH, HOME, LANG,
     * TZ and the like, the worker's variables named here, and the literal values of `env`.
     */
    passEnv: z.array(envVarNameSchema).default([]),
    env: z.record(envVarNameSchema, z.string()).default({}),
  }),
  z.strictObject({
    type: z.literal('kubernetes'),
    deployment: k8sNameSchema,
    namespace: k8sNameSchema,
    kubeconfigEnv: envVarNameSchema.optional(),
    rolloutTimeout: durationSchema.default('5m').transform(String),
  }),
  z.strictObject({
    type: z.literal('systemd'),
    unit: z.string().regex(/^[A-Za-z0-9@._:-]+$/, 'must be a systemd unit name'),
  }),
  z.strictObject({
    type: z.literal('compose'),
    file: z.string().min(1),
    service: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'must be a compose service name'),
  }),
]);

export const logSourceSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('file'), path: z.string().min(1) }),
  z.strictObject({
    type: z.literal('kubernetes'),
    deployment: k8sNameSchema,
    namespace: k8sNameSchema,
    kubeconfigEnv: envVarNameSchema.optional(),
  }),
]);
