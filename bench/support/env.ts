/**
 * Knobs of `npm run bench` from the environment. BENCH_SMOKE=1 runs every section at a small size (fewer runs,
 * 20,000 objects), only to prove that each one works: nothing it prints is a result, and BENCHMARKS.md is left alone.
 */
export const SMOKE = process.env.BENCH_SMOKE === '1';

/** A whole number from the environment (at least `min`), or the fallback when the variable is unset or empty. */
export function intEnv(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min)
    throw new Error(`${name} must be a whole number of at least ${min}, got ${JSON.stringify(raw)}`);
  return value;
}
