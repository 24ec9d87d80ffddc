import { z } from 'zod';
import { DECISION_LIMITS } from '../decisions.js';
import { parseDuration } from '../duration.js';

// The building blocks every schema uses: names, durations, people, SQL identifiers, error messages.

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

export const sqlIdentifier = z
  .string()
  .regex(
    /^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$/,
    'must be an SQL identifier (letters, digits, _; optionally schema.table)',
  );

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

const BYTE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};
/** A size such as 500MB, 2GiB or a number of bytes; becomes a number of bytes. */
export const byteSizeSchema = z.union([z.number().int().min(0), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(v);
  const unit = BYTE_UNITS[(m?.[2] || 'b').toLowerCase()];
  if (!m || unit === undefined) {
    ctx.addIssue({ code: 'custom', message: 'must be a size such as 500MB, 2GiB or a number of bytes' });
    return z.NEVER;
  }
  return Math.round(Number(m[1]) * unit);
});
