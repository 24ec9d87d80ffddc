import { z } from 'zod';
import { parseDuration } from './duration.js';
import { DETECTION_DEFAULTS } from './constants.js';
import { DECISION_LIMITS, PUBLIC_KEY_PATTERN } from './decisions.js';
import { canonicalName } from './names.js';

/** Names that end up in workflow ids, file paths and command arguments: no shell metacharacters, no paths. */
export const nameSchema = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$/, 'must be lowercase letters, digits, ".", "_" or "-" (1-64 chars)');
export const k8sNameSchema = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, 'must be a Kubernetes resource name (RFC 1123)');
export const envVarNameSchema = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name');
/** The longest duration an environment file or an input may state (timers of a run, windows, waits). */
export const MAX_DURATION_MS = 7 * 86_400_000;

/** A duration such as "30s", "5m", "1h30m" or milliseconds; finite, and within [min, max] when given. */
export function boundedDuration(bounds: { min?: string; max?: string } = {}) {
  const min = bounds.min ? parseDuration(bounds.min) : 0;
  const max = bounds.max ? parseDuration(bounds.max) : MAX_DURATION_MS;
  return z.union([z.string(), z.number()]).superRefine((v, ctx) => {
    let ms: number;
    try {
      ms = parseDuration(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a duration such as 30s, 5m or 1h' });
      return;
    }
    if (ms < min) ctx.addIssue({ code: 'custom', message: `must be at least ${bounds.min}` });
    if (ms > max) ctx.addIssue({ code: 'custom', message: `must be at most ${bounds.max ?? '7d'}` });
  });
}
export const durationSchema = boundedDuration();

/** A person's name as typed (requester, approver): compared in canonical form (src/shared/names.ts). */
export const personSchema = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(DECISION_LIMITS.by, `must be at most ${DECISION_LIMITS.by} characters`);

/** An approver (or someone who may abort): a name, or a name with the Ed25519 public key their decisions are signed with. */
const signerSchema = z.union([
  personSchema,
  z.strictObject({
    name: personSchema,
    key: z
      .string()
      .regex(PUBLIC_KEY_PATTERN, 'must be "ed25519:" and a 32-byte key in base64 (runbook keys init prints it)'),
  }),
  /** the public key line in a file (relative to the environment file), read when the environment is loaded */
  z.strictObject({ name: personSchema, keyFile: z.string().min(1) }),
]);
type Signer = z.infer<typeof signerSchema>;
const signerName = (s: Signer): string => (typeof s === 'string' ? s : s.name);
const signerKey = (s: Signer): string | undefined =>
  typeof s === 'string' ? undefined : 'key' in s ? s.key : `file:${s.keyFile}`;

/** Every signer's name is unique in canonical form, and a key belongs to one person. */
function checkSigners(signers: Signer[], field: string, ctx: z.RefinementCtx): void {
  const names = new Map<string, string>();
  const keys = new Map<string, string>();
  signers.forEach((s, i) => {
    const name = canonicalName(signerName(s));
    const same = names.get(name);
    if (same !== undefined) {
      ctx.addIssue({ code: 'custom', path: [field, i], message: `"${signerName(s)}" is the same person as "${same}"` });
    }
    names.set(name, signerName(s));
    const key = signerKey(s);
    if (key) {
      const owner = keys.get(key);
      if (owner !== undefined && canonicalName(owner) !== name) {
        ctx.addIssue({ code: 'custom', path: [field, i, 'key'], message: `this key is already ${owner}'s` });
      }
      keys.set(key, signerName(s));
    }
  });
}

export const approvalPolicySchema = z
  .strictObject({
    /** who may approve (and reject); empty means anyone except (unless allowed) the requester */
    approvers: z.array(signerSchema).default([]),
    quorum: z.number().int().min(1).max(10).default(1),
    allowSelfApproval: z.boolean().default(false),
    timeout: durationSchema.default('1h').transform(String),
    /** decisions must carry a valid signature of a key listed here; when false unsigned ones count, marked unsigned */
    requireSignatures: z.boolean().default(false),
    /** how long a signed decision stays valid after its issuedAt */
    signatureTtl: boundedDuration({ min: '10s', max: '1d' }).default('15m').transform(String),
    /** who may abort (default: the approvers and the requester) */
    abortBy: z.array(signerSchema).optional(),
  })
  .superRefine((p, ctx) => {
    checkSigners(p.approvers, 'approvers', ctx);
    if (p.abortBy) checkSigners(p.abortBy, 'abortBy', ctx);
    if (p.approvers.length > 0 && p.quorum > p.approvers.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['quorum'],
        message: `${p.quorum} exceeds the ${p.approvers.length} approvers listed`,
      });
    }
    if (p.requireSignatures) {
      if (p.approvers.length === 0) {
        ctx.addIssue({ code: 'custom', path: ['approvers'], message: 'requireSignatures needs approvers with keys' });
      }
      p.approvers.forEach((a, i) => {
        if (typeof a === 'string') {
          ctx.addIssue({
            code: 'custom',
            path: ['approvers', i],
            message: `${a} has no key, but requireSignatures is true`,
          });
        }
      });
    }
    // one key per person across both lists
    const byName = new Map<string, string>();
    for (const s of [...p.approvers, ...(p.abortBy ?? [])]) {
      const key = signerKey(s);
      if (!key) continue;
      const name = canonicalName(signerName(s));
      const other = byName.get(name);
      if (other && other !== key) {
        ctx.addIssue({
          code: 'custom',
          path: ['abortBy'],
          message: `${signerName(s)} is listed with two different keys`,
        });
      }
      byName.set(name, key);
    }
  })
  .transform((p) => {
    /** a key given inline, or the file the loader reads it from */
    const keys = new Map<string, { name: string; publicKey?: string; keyFile?: string }>();
    for (const s of [...p.approvers, ...(p.abortBy ?? [])]) {
      if (typeof s === 'string') continue;
      keys.set(
        canonicalName(s.name),
        'key' in s ? { name: s.name, publicKey: s.key } : { name: s.name, keyFile: s.keyFile },
      );
    }
    return {
      approvers: p.approvers.map(signerName),
      quorum: p.quorum,
      allowSelfApproval: p.allowSelfApproval,
      timeout: p.timeout,
      requireSignatures: p.requireSignatures,
      signatureTtl: p.signatureTtl,
      ...(p.abortBy ? { abortBy: p.abortBy.map(signerName) } : {}),
      keys: [...keys.values()],
    };
  });

export const escalationLevelSchema = z.strictObject({
  level: z.number().int().min(1),
  after: durationSchema.transform(String),
  channels: z.array(nameSchema).default([]),
  contact: z.string().optional(),
});

/** The seed's ladder: L1 at start, L2 at 30 min, L3 at 1 h, L4 at 2 h. */
export const DEFAULT_ESCALATION = [
  { level: 1, after: '0s', channels: [], contact: 'on-call engineer' },
  { level: 2, after: '30m', channels: [], contact: 'devops lead' },
  { level: 3, after: '1h', channels: [], contact: 'database admin' },
  { level: 4, after: '2h', channels: [], contact: 'engineering manager' },
];

const notificationChannelSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('log') }),
  z.strictObject({
    type: z.literal('webhook'),
    /** the worker reads the URL from this variable of its own environment: no secrets in files or history */
    urlEnv: envVarNameSchema,
    timeout: durationSchema.default('10s').transform(String),
  }),
]);

const flagStoreSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('env-file'), path: z.string().min(1) }),
  z.strictObject({
    type: z.literal('kubernetes'),
    deployment: k8sNameSchema,
    namespace: k8sNameSchema,
    container: k8sNameSchema.optional(),
    /** environment variable holding the kubeconfig path, if not the default */
    kubeconfigEnv: envVarNameSchema.optional(),
  }),
]);

const serviceSchema = z.discriminatedUnion('type', [
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

const logSourceSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('file'), path: z.string().min(1) }),
  z.strictObject({
    type: z.literal('kubernetes'),
    deployment: k8sNameSchema,
    namespace: k8sNameSchema,
    kubeconfigEnv: envVarNameSchema.optional(),
  }),
]);

export const flagNamesSchema = z.strictObject({
  dualWriteEnabled: envVarNameSchema,
  strictMode: envVarNameSchema,
  legacyWriteBlocked: envVarNameSchema,
});

const sqlIdentifier = z
  .string()
  .regex(
    /^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$/,
    'must be an SQL identifier (letters, digits, _; optionally schema.table)',
  );
const columnsSchema = z
  .strictObject({
    objectId: sqlIdentifier,
    version: sqlIdentifier,
    content: sqlIdentifier,
    size: sqlIdentifier,
    sha256: sqlIdentifier.nullable(),
    createdAt: sqlIdentifier,
    updatedAt: sqlIdentifier,
    /** a 64-bit integer column holding the row fingerprint, kept by a trigger (`runbook dual-write prepare`) */
    fingerprint: sqlIdentifier,
  })
  .partial();

/** One side of a dual-write pair. */
export const objectStoreConfigSchema = z.discriminatedUnion('type', [
  z
    .strictObject({
      type: z.literal('postgres'),
      /** the worker's environment variable holding the connection string */
      urlEnv: envVarNameSchema.default('DATABASE_URL'),
      table: sqlIdentifier,
      columns: columnsSchema.optional(),
      /** the content column (text) holds `<sha[0:2]>/<sha>`, a content-addressed blob under `root`, instead of bytes */
      contentReference: z.strictObject({ root: z.string().min(1) }).optional(),
    })
    .refine((c) => !(c.contentReference && c.columns?.sha256 === null), {
      path: ['contentReference'],
      message: 'needs a sha256 column: columns.sha256 cannot be null (the digest cannot be computed from a reference)',
    }),
  z.strictObject({
    type: z.literal('sqlite'),
    path: z.string().min(1),
    table: sqlIdentifier,
    columns: columnsSchema.optional(),
  }),
  z.strictObject({ type: z.literal('object-store'), root: z.string().min(1) }),
]);
export type ObjectStoreConfig = z.infer<typeof objectStoreConfigSchema>;

/**
 * Where a dual-write run keeps its work files (diff, isolation report, plan, snapshot, artifacts) when they must
 * be readable from every worker host: tables in Postgres, created on first use.
 */
const workStoreSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('postgres'),
    /** the worker's environment variable holding the connection string */
    urlEnv: envVarNameSchema.default('DATABASE_URL'),
    /** prefix of the tables: <table>_files, <table>_chunks, <table>_blobs */
    table: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,40}$/, 'must be a lowercase SQL identifier of at most 41 characters')
      .default('dr_work'),
  }),
]);
export type WorkStoreConfig = z.infer<typeof workStoreSchema>;

const dualWriteObjectSchema = z.strictObject({
  /** the two stores; "a" is the primary (PostgreSQL in the seed), "b" the secondary (the object store) */
  a: objectStoreConfigSchema,
  b: objectStoreConfigSchema,
  labels: z
    .strictObject({ a: z.string().default('postgres'), b: z.string().default('store') })
    .default({ a: 'postgres', b: 'store' }),
  /** who wins a newest-wins tie */
  tieBreaker: z.enum(['a', 'b']).default('a'),
  /**
   * diff files, reports and snapshots go here, on the worker's host (share it between workers, or use workStore);
   * exactly one of workDir and workStore
   */
  workDir: z.string().min(1).optional(),
  /** work files in Postgres instead of workDir: every worker host reads what another wrote */
  workStore: workStoreSchema.optional(),
  severity: z
    .strictObject({
      /** this many differing objects or more is critical */
      criticalCount: z.number().int().min(1).default(1000),
      /** critical when the repair would overwrite a newer copy with an older one */
      criticalOnOlderOverwrite: z.boolean().default(true),
    })
    .default({ criticalCount: 1000, criticalOnOlderOverwrite: true }),
  /** on critical severity, dual writes are halted through this target's flag store first */
  haltTarget: nameSchema.optional(),
  batchSize: z.number().int().min(1).max(100_000).default(500),
  parallelism: z.number().int().min(1).max(64).default(2),
  /**
   * how detection compares the sides: `bisect` compares segment checksums computed by the stores (fast when
   * fingerprints are stored: `columns.fingerprint`, and always in the object store) and reads only the
   * fingerprints of segments that differ (of every segment while most differ); `merge` streams both sides in key
   * order (see BENCHMARKS.md)
   */
  detection: z
    .strictObject({
      mode: z.enum(['bisect', 'merge']).default('bisect'),
      pageSize: z.number().int().min(1).max(100_000).default(DETECTION_DEFAULTS.pageSize),
      /** rows per checksummed segment */
      segmentRows: z.number().int().min(1).max(1_000_000).default(DETECTION_DEFAULTS.segmentRows),
      /** segments per summary statement */
      windowSegments: z.number().int().min(1).max(100_000).default(DETECTION_DEFAULTS.windowSegments),
      /** share of a window's segments that differ above which the next windows compare fingerprint lists without checksums */
      listAbove: z.number().min(0).max(1).default(DETECTION_DEFAULTS.listAbove),
    })
    // absent: every field's own default
    .prefault({}),
  /** pause after each batch to limit the load on production stores */
  batchPause: durationSchema.default('0s').transform(String),
  /** repairs larger than this run as child workflows over contiguous parts of the plan (any worker takes them) */
  partitionObjects: z.number().int().min(1).default(50_000),
  /** how many partitions run at once */
  partitionWindow: z.number().int().min(1).max(64).default(4),
  /** objects per repair activity inside a partition; a partition continues-as-new before its history grows large */
  chunkObjects: z.number().int().min(1).default(10_000),
});

const dualWriteSchema = dualWriteObjectSchema.superRefine((dw, ctx) => {
  if ((dw.workDir === undefined) === (dw.workStore === undefined))
    ctx.addIssue({
      code: 'custom',
      path: [dw.workDir === undefined ? 'workDir' : 'workStore'],
      message: 'give exactly one of workDir (a directory on the worker host) and workStore (Postgres)',
    });
});

const targetSchema = z.strictObject({
  description: z.string().optional(),
  flags: z.strictObject({ store: flagStoreSchema, names: flagNamesSchema }).optional(),
  service: serviceSchema.optional(),
  dualWrite: dualWriteSchema.optional(),
  health: z
    .strictObject({
      http: z.strictObject({
        url: z.url(),
        expectStatus: z.number().int().default(200),
        expectBody: z.string().optional(),
        timeout: durationSchema.default('5s').transform(String),
        /** how long to keep polling for a healthy answer after a reload/restart */
        within: durationSchema.default('30s').transform(String),
      }),
      /** the service's own view of its flags: a JSON object of flag name to value */
      flagsUrl: z.url().optional(),
      logs: logSourceSchema.optional(),
      logPattern: z.string().default('dual_write_scheduled'),
      quietWindow: boundedDuration({ min: '1s' }).default('30s').transform(String),
    })
    .optional(),
});

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

// ---------------------------------------------------------------------------------------------------------
// Runbook inputs

const baseInput = {
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

export const FEATURE_FLAG_MODES = ['disable-dual-write', 'disable-strict-mode', 'block-legacy-writes'] as const;
export const featureFlagRollbackInputSchema = z.strictObject({
  ...baseInput,
  mode: z.enum(FEATURE_FLAG_MODES),
  /** how long no new `dual_write_scheduled` lines must appear; defaults to the target's quietWindow */
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
export type DualWriteRollbackParams = z.output<typeof dualWriteRollbackInputSchema>;

/** Formats a zod error as "field: message; field: message" so the operator sees which field is wrong. */
export function describeZodError(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const field = issue.path.length ? issue.path.join('.') : '(input)';
      // a bad record key ("targets.Web") would otherwise only say "Invalid key in record": add why
      const why = issue.code === 'invalid_key' ? issue.issues.map((i) => i.message) : [];
      return `${field}: ${[issue.message, ...why].join(': ')}`;
    })
    .join('; ');
}
