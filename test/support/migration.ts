import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { serviceFromConfig } from '../../src/activities/adapters/index.js';
import type { ServiceAdapter } from '../../src/activities/adapters/types.js';
import { loadTarget, requireSection } from '../../src/activities/environment.js';
import type { JobState } from '../../src/activities/migration/types.js';
import {
  writeJobProcessorEnvironment,
  type JobProcessorEnvironmentOptions,
  type JobProcessorFiles,
} from '../../src/demo/job-processor-environment.js';
import { writeSpoolJobs } from '../../src/demo/jobs-seed.js';
import { freePort } from '../../src/dev/ports.js';
import type { Harness } from './harness.js';
import { httpHealth } from './wait.js';
import { parseSpoolName } from '../../src/activities/migration/jobs/spool-names.js';

// A demo job processor of the test's own (src/demo/job-processor/service.mjs) behind a `migration` target named
// `jobs`: environment file, INI file, spool (or a jobs table in the suite's Postgres), running process.

export const JOB_STATES: JobState[] = ['queue', 'processing', 'failed', 'completed'];
export type Backend = 'heavydb' | 'parquet';
export interface Fault {
  mode: 'fail' | 'slow' | 'empty';
  ms?: number;
  rate?: number;
}

export interface SeedOptions {
  /** the job's state began this long ago (file mtime; started_at/updated_at): stuck jobs are old processing ones */
  ageMs?: number;
  /** merged into each job's JSON (payload column) */
  payload?: Record<string, unknown>;
  /** spool only: the file is not JSON */
  notJson?: boolean;
  /** the job carries this replay key (a job a replay requeued before) */
  replayKey?: string;
  /** ids are `<prefix>-<n>` (default `job`) */
  prefix?: string;
}

export interface OutputRun {
  run: string;
  dir: string;
  /** summary file name → its text */
  files: Record<string, string>;
  manifest?: { files: Record<string, string> };
}

export interface ProcessorStats {
  pid: number;
  processed: number;
  failed: number;
  dualWriteFailures: number;
  emptyOutputs: number;
  reloads: number;
  wedged: boolean;
  inflight: number;
  /** taking jobs out of the queue right now */
  claiming: boolean;
  faults: Partial<Record<Backend, Fault>>;
}

export interface JobTestTarget extends JobProcessorFiles {
  envName: string;
  target: 'jobs';
  port: number;
  base: string;
  file: string;
  /** the jobs table when the source is Postgres */
  table?: string;
  service: ServiceAdapter;
  startService(): Promise<void>;
  stopService(): Promise<void>;
  /** SIGHUP; returns once the processor has re-read its INI file */
  reload(): Promise<void>;
  health(): Promise<{ status: number; body: string }>;
  waitHealthy(timeoutMs?: number): Promise<void>;
  metrics(): Promise<string>;
  /** one sample's value (0 when absent): metric('jobs_processed_total', { backend: 'heavydb' }) */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  stats(): Promise<ProcessorStats>;
  /** creates n jobs in a state; returns their ids */
  seedJobs(n: number, state: JobState, o?: SeedOptions): Promise<string[]>;
  setFault(backend: Backend, fault: Fault | null): Promise<void>;
  wedge(): Promise<void>;
  readIni(): string;
  iniBytes(): Buffer;
  writeIni(text: string): void;
  /** every processing-log line, oldest file first */
  logLines(): string[];
  counts(): Promise<Record<JobState, number>>;
  /** ids in a state */
  jobIds(state: JobState): Promise<string[]>;
  /** extra `Completed` lines per (job id, replay key) in the processor's log: 0 means exactly once */
  duplicates(): number;
  /** `Completed` lines per job id */
  completions(): Map<string, number>;
  /** until the queue is empty and nothing is in flight */
  waitForDrain(timeoutMs?: number): Promise<void>;
  outputs(): OutputRun[];
}

export interface JobTargetOptions extends Partial<
  Omit<JobProcessorEnvironmentOptions, 'environmentsDir' | 'dataDir' | 'port' | 'name' | 'postgresTable'>
> {
  /** the jobs live in a table of the suite's Postgres (h.databaseUrl, as JOBS_DATABASE_URL) */
  postgres?: boolean;
  /** start the processor (default true) */
  start?: boolean;
}

let counter = 0;
const COMPLETED = /^\S+ INFO Completed job (\S+) backend=\S+ ms=\d+ output=\S+ replay=(\S+)$/;

export async function jobTarget(h: Harness, o: JobTargetOptions = {}): Promise<JobTestTarget> {
  const port = await freePort();
  const envName = `jp${process.pid}-${counter++}`;
  const dataDir = join(h.root, 'data', envName, 'jobs');
  const table = o.postgres ? `jobs_${process.pid}_${Date.now() % 1_000_000}_${counter}` : undefined;
  let pool: pg.Pool | undefined;
  if (table) {
    // the worker (in this process) passes it to the processor (passEnv); the URL never enters an environment file
    process.env.JOBS_DATABASE_URL = h.databaseUrl;
    pool = new pg.Pool({ connectionString: h.databaseUrl, max: 2 });
    await pool.query(
      `CREATE TABLE ${table} (id text PRIMARY KEY, payload jsonb NOT NULL DEFAULT '{}', status text NOT NULL DEFAULT 'queue', ` +
        `attempts integer NOT NULL DEFAULT 0, started_at timestamptz, updated_at timestamptz NOT NULL DEFAULT now(), ` +
        `replay_key text, error text)`,
    );
  }
  const files = writeJobProcessorEnvironment({
    environmentsDir: h.environmentsDir,
    name: envName,
    dataDir,
    port,
    postgresTable: table,
    sections: { evidence: { workerKeys: [h.workerKey.publicKey] }, ...o.sections },
    ...o,
  });
  const loaded = await loadTarget(h.environmentsDir, envName, 'jobs');
  const service = serviceFromConfig(requireSection(loaded, 'migration').services.processor!, loaded.resolvePath);
  const base = `http://127.0.0.1:${port}`;
  let seq = 0;

  const health = () => httpHealth(base);
  const waitHealthy = async (timeoutMs = 15_000) => {
    const deadline = Date.now() + timeoutMs;
    while ((await health()).status !== 200) {
      if (Date.now() > deadline) throw new Error(`job processor on ${base} not healthy: ${(await health()).body}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const metrics = async () => (await fetch(`${base}/metrics`)).text();
  const stats = async () => (await (await fetch(`${base}/stats`)).json()) as ProcessorStats;
  const spoolDir = (state: JobState) => join(files.root, 'jobs', state);
  const logLines = () => {
    let names: string[] = [];
    try {
      names = readdirSync(files.logDir)
        .filter((n) => /^job_processor_.*\.log$/.test(n))
        .sort();
    } catch {
      return [];
    }
    return names.flatMap((n) =>
      readFileSync(join(files.logDir, n), 'utf8')
        .split('\n')
        .filter((l) => l.length > 0),
    );
  };
  const completionsBy = (key: (id: string, replay: string) => string) => {
    const seen = new Map<string, number>();
    for (const line of logLines()) {
      const m = COMPLETED.exec(line);
      if (m) seen.set(key(m[1]!, m[2]!), (seen.get(key(m[1]!, m[2]!)) ?? 0) + 1);
    }
    return seen;
  };
  const counts = async (): Promise<Record<JobState, number>> => {
    if (pool) {
      const r = await pool.query<{ status: JobState; n: number }>(
        `SELECT status, count(*)::int AS n FROM ${table} GROUP BY status`,
      );
      const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
      for (const row of r.rows) out[row.status] = row.n;
      return out;
    }
    return Object.fromEntries(
      JOB_STATES.map((s) => [
        s,
        readdirSync(spoolDir(s)).filter((n) => n.endsWith('.json') && !n.startsWith('.')).length,
      ]),
    ) as Record<JobState, number>;
  };

  const target: JobTestTarget = {
    ...files,
    envName,
    target: 'jobs',
    port,
    base,
    table,
    service,
    async startService() {
      await service.start();
      await waitHealthy();
    },
    stopService: () => service.stop(),
    async reload() {
      const before = (await stats()).reloads;
      await service.reload();
      for (let i = 0; (await stats()).reloads === before; i++) {
        if (i > 200) throw new Error('the job processor did not reload after SIGHUP');
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    health,
    waitHealthy,
    metrics,
    async metric(name, labels = {}) {
      const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
      for (const line of (await metrics()).split('\n')) {
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
        if (m && m[1] === name && want.every((w) => (m[2] ?? '').includes(w))) return Number(m[3]);
      }
      return 0;
    },
    stats,
    async seedJobs(n, state, s = {}) {
      const at = new Date(Date.now() - (s.ageMs ?? 0));
      const ids = Array.from({ length: n }, () => `${s.prefix ?? 'job'}-${String(seq++).padStart(6, '0')}`);
      if (pool) {
        if (s.notJson) throw new Error('seedJobs: notJson is for the spool only');
        await pool.query(
          `INSERT INTO ${table} (id, payload, status, attempts, started_at, updated_at, replay_key, error) ` +
            `SELECT id, jsonb_build_object('timestamp', $3::timestamptz) || $4::jsonb, $2, ` +
            `CASE WHEN $2 = 'queue' THEN 0 ELSE 1 END, CASE WHEN $2 = 'queue' THEN NULL ELSE $3::timestamptz END, ` +
            `$3::timestamptz, $5, CASE WHEN $2 = 'failed' THEN 'backend unavailable (seeded)' END FROM unnest($1::text[]) AS id`,
          [ids, state, at.toISOString(), JSON.stringify(s.payload ?? {}), s.replayKey ?? null],
        );
        return ids;
      }
      writeSpoolJobs(files.root, ids, state, { ...s, at });
      return ids;
    },
    async setFault(backend, fault) {
      const next = { ...(await stats()).faults, [backend]: fault };
      if (fault === null) delete next[backend];
      const r = await fetch(`${base}/faults`, { method: 'POST', body: JSON.stringify(next) });
      if (!r.ok) throw new Error(`POST /faults: ${r.status} ${await r.text()}`);
    },
    async wedge() {
      const r = await fetch(`${base}/wedge`, { method: 'POST' });
      if (!r.ok) throw new Error(`POST /wedge: ${r.status}`);
    },
    readIni: () => readFileSync(files.ini, 'utf8'),
    iniBytes: () => readFileSync(files.ini),
    writeIni: (text) => writeFileSync(files.ini, text),
    logLines,
    counts,
    async jobIds(state) {
      if (pool)
        return (
          await pool.query<{ id: string }>(`SELECT id FROM ${table} WHERE status = $1 ORDER BY id`, [state])
        ).rows.map((r) => r.id);
      return readdirSync(spoolDir(state))
        .map((n) => parseSpoolName(n)?.id)
        .filter((id): id is string => id !== undefined)
        .sort();
    },
    duplicates() {
      let extra = 0;
      for (const n of completionsBy((id, key) => `${id}\0${key}`).values()) extra += n - 1;
      return extra;
    },
    completions: () => completionsBy((id) => id),
    async waitForDrain(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let quiet = 0;
      while (quiet < 2) {
        const st = await stats();
        const idle = (await counts()).queue === 0 && st.inflight === 0 && !st.claiming;
        quiet = idle ? quiet + 1 : 0;
        if (Date.now() > deadline) throw new Error(`jobs not drained: ${JSON.stringify(await counts())}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    outputs() {
      let runs: string[] = [];
      try {
        runs = readdirSync(files.outputDir).filter((n) => n.startsWith('run_'));
      } catch {
        return [];
      }
      return runs.sort().map((run) => {
        const dir = join(files.outputDir, run);
        const out: OutputRun = { run, dir, files: {} };
        for (const name of readdirSync(dir)) {
          const text = readFileSync(join(dir, name), 'utf8');
          if (name === 'manifest.json') out.manifest = JSON.parse(text) as OutputRun['manifest'];
          else if (!name.startsWith('.')) out.files[name] = text;
        }
        return out;
      });
    },
  };
  h.onClose(async () => {
    await service.stop().catch(() => {});
    if (pool) {
      await pool.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
      await pool.end();
    }
    if (process.env.KEEP_TEST_FILES !== '1') rmSync(join(h.root, 'data', envName), { recursive: true, force: true });
  });
  if (o.start !== false) await target.startService();
  return target;
}
