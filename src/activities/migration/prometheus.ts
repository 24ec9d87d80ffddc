// The Prometheus text exposition format (version 0.0.4), the part a soak needs: samples with labels. No npm
// parser is maintained (parse-prometheus-text-format was last published in 2019), and the format is small:
// `# HELP` / `# TYPE` comments, then `name{label="value",…} value [timestamp]` per line.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?\s*$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/y;

function parseValue(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  const n = Number(text);
  if (Number.isNaN(n)) throw new Error(`not a sample value: ${text}`);
  return n;
}

export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`metrics line ${i + 1} is not a sample: ${line.slice(0, 120)}`);
    const labels: Record<string, string> = {};
    const body = m[3] ?? '';
    LABEL.lastIndex = 0;
    while (LABEL.lastIndex < body.length) {
      const at = LABEL.lastIndex;
      const l = LABEL.exec(body);
      if (!l) {
        if (body.slice(at).trim() === '') break;
        throw new Error(`metrics line ${i + 1}: bad labels: ${body.slice(0, 120)}`);
      }
      labels[l[1]!] = l[2]!.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: m[1]!, labels, value: parseValue(m[4]!) });
  }
  return samples;
}

/** The demo processor's counters per backend (docs/backend-migration.md, `GET /metrics`). */
export interface BackendCounters {
  processed: number;
  failed: number;
  /** job_duration_seconds histogram: sum of seconds, count of jobs */
  durationSum: number;
  durationCount: number;
}

export interface MetricsSnapshot {
  /** ms since epoch, when it was read */
  at: number;
  backends: Record<string, BackendCounters>;
}

const COUNTERS: Record<string, keyof BackendCounters> = {
  jobs_processed_total: 'processed',
  jobs_failed_total: 'failed',
  job_duration_seconds_sum: 'durationSum',
  job_duration_seconds_count: 'durationCount',
};

export function backendCounters(samples: Sample[]): Record<string, BackendCounters> {
  const out: Record<string, BackendCounters> = {};
  for (const s of samples) {
    const field = COUNTERS[s.name];
    const backend = s.labels.backend;
    if (!field || backend === undefined) continue;
    out[backend] ??= { processed: 0, failed: 0, durationSum: 0, durationCount: 0 };
    out[backend][field] += s.value;
  }
  return out;
}

export interface BackendWindow {
  /** jobs finished in the window (processed + failed) */
  jobs: number;
  failed: number;
  errorRate: number;
  /** mean job duration in the window, ms; undefined without timed jobs */
  meanLatencyMs?: number;
}

/** What changed between two snapshots; a counter that went down was reset (the service restarted): counted from 0. */
export function windowOf(since: MetricsSnapshot, now: MetricsSnapshot): Record<string, BackendWindow> {
  const out: Record<string, BackendWindow> = {};
  for (const [backend, c] of Object.entries(now.backends)) {
    const s = since.backends[backend] ?? { processed: 0, failed: 0, durationSum: 0, durationCount: 0 };
    const reset = c.durationCount < s.durationCount || c.processed < s.processed || c.failed < s.failed;
    const base = reset ? { processed: 0, failed: 0, durationSum: 0, durationCount: 0 } : s;
    const processed = c.processed - base.processed;
    const failed = c.failed - base.failed;
    const count = c.durationCount - base.durationCount;
    const sum = c.durationSum - base.durationSum;
    const jobs = processed + failed;
    out[backend] = {
      jobs,
      failed,
      errorRate: jobs === 0 ? 0 : failed / jobs,
      ...(count > 0 ? { meanLatencyMs: Math.round((sum / count) * 1000 * 10) / 10 } : {}),
    };
  }
  return out;
}
