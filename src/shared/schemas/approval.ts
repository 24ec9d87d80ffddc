import { z } from 'zod';
import { PUBLIC_KEY_PATTERN } from '../decisions.js';
import { canonicalName } from '../names.js';
import { boundedDuration, durationSchema, nameSchema, personSchema } from './primitives.js';

// The approval policy and escalation ladder of an environment file.

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
