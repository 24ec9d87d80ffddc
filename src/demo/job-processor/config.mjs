// The demo job processor's settings: the backend section of its INI file and the fault switch (a JSON file).
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parse } from 'ini';

/** the backends the demo processor can write to */
export const BACKENDS = ['heavydb', 'parquet'];
export const FAULT_MODES = ['fail', 'slow', 'empty'];

const other = (b) => BACKENDS.find((x) => x !== b);

/**
 * `[data_backend]` of the INI file: primary, secondary (default and when equal to primary: the other backend),
 * dual_write, cutover_percent, phase. `problem` says why the configuration is invalid (the processor then pauses
 * and /health answers 503).
 */
export function readBackendConfig(path) {
  const section = parse(readFileSync(path, 'utf8')).data_backend ?? {};
  const text = (k) => (section[k] === undefined ? undefined : String(section[k]).trim());
  const primary = text('primary') ?? '';
  const secondaryRaw = text('secondary');
  const secondary = secondaryRaw && secondaryRaw !== primary ? secondaryRaw : (other(primary) ?? '');
  const dualWrite = (text('dual_write') ?? 'false').toLowerCase();
  const percentText = text('cutover_percent') ?? '0';
  const cutoverPercent = /^\d{1,3}$/.test(percentText) ? Number(percentText) : Number.NaN;
  const config = { primary, secondary, dualWrite: dualWrite === 'true', cutoverPercent, phase: text('phase') };
  if (!BACKENDS.includes(primary)) return { ...config, problem: `unknown primary backend "${primary}"` };
  if (!BACKENDS.includes(secondary)) return { ...config, problem: `unknown secondary backend "${secondary}"` };
  if (!['true', 'false'].includes(dualWrite))
    return { ...config, problem: `dual_write "${dualWrite}" is not true|false` };
  if (!(cutoverPercent >= 0 && cutoverPercent <= 100))
    return { ...config, problem: `cutover_percent "${percentText}" is outside 0-100` };
  return config;
}

/** The job's bucket 0..99: the first 4 bytes of sha256(id), big-endian, modulo 100. */
export function bucketOf(id) {
  return createHash('sha256').update(String(id)).digest().readUInt32BE(0) % 100;
}

/** Where a job goes: the secondary when its bucket is below the cut-over percent; with dual write, the other too. */
export function route(id, config) {
  const backend = bucketOf(id) < config.cutoverPercent ? config.secondary : config.primary;
  const dual = config.dualWrite ? (backend === config.primary ? config.secondary : config.primary) : undefined;
  return { backend, dual };
}

/** The backends jobs are routed to (not the dual-write copies). */
export function routedBackends(config) {
  const out = [];
  if (config.cutoverPercent < 100) out.push(config.primary);
  if (config.cutoverPercent > 0) out.push(config.secondary);
  return out;
}

/** `{ "<backend>": { mode, ms?, rate? } }`; throws on anything else. */
export function checkFaults(value) {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('faults must be an object');
  const out = {};
  for (const [backend, f] of Object.entries(value)) {
    if (f === null) continue;
    if (!BACKENDS.includes(backend)) throw new Error(`unknown backend "${backend}"`);
    if (!FAULT_MODES.includes(f?.mode)) throw new Error(`${backend}: mode must be one of ${FAULT_MODES.join(', ')}`);
    if (f.ms !== undefined && !(Number.isFinite(f.ms) && f.ms >= 0)) throw new Error(`${backend}: ms must be >= 0`);
    if (f.rate !== undefined && !(f.rate >= 0 && f.rate <= 1)) throw new Error(`${backend}: rate must be 0..1`);
    out[backend] = {
      mode: f.mode,
      ...(f.ms !== undefined && { ms: f.ms }),
      ...(f.rate !== undefined && { rate: f.rate }),
    };
  }
  return out;
}

/** The fault file's faults; an absent or unreadable file is no fault. */
export function readFaults(path) {
  try {
    return checkFaults(JSON.parse(readFileSync(path, 'utf8')));
  } catch {
    return {};
  }
}

export function writeFaults(path, faults) {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(faults, null, 2)}\n`);
  renameSync(tmp, path);
}

/** Whether the fault hits this job (rate: the share of jobs it hits; default all). */
export const hits = (fault) => fault !== undefined && (fault.rate === undefined || Math.random() < fault.rate);
