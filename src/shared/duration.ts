/** Durations in inputs and environment files: "90s", "30m", "1h", "1h30m", "250ms" or milliseconds. */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

export function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new Error(`invalid duration ${value}`);
    return value;
  }
  const text = value.trim();
  let total = 0;
  if (/^\d+$/.test(text)) total = Number(text);
  else if (/^(\d+(?:\.\d+)?(ms|s|m|h|d))+$/.test(text)) {
    for (const match of text.matchAll(PART)) total += Number(match[1]) * UNIT_MS[match[2]!]!;
  } else throw new Error(`invalid duration "${value}" (use e.g. 30s, 5m, 1h30m)`);
  // "9999…9d" parses to Infinity: not a duration any timer can hold
  if (!Number.isFinite(total)) throw new Error(`invalid duration "${value}" (too large)`);
  return total;
}

export function formatDuration(ms: number): string {
  // compare after rounding: 999.6 is "1s", not "1000ms"
  if (Math.round(ms) < 1000) return `${Math.round(ms)}ms`;
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  return [h ? `${h}h` : '', m ? `${m}m` : '', rest || (!h && !m) ? `${rest}s` : ''].join('');
}
