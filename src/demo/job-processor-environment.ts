import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { repoRoot } from '../dev/temporal-server.js';
import { environmentHeader } from './environment.js';

// The demo job processor (src/demo/job-processor/service.mjs) as a runbook target with a `migration` section:
// environments/demo.yaml's `jobs` target, and the same shape written for tests with their own port and files.

/**
 * The processor's INI file as the migration starts (phase primary-only). The comments, the [SYSTEM] section
 * before and the sections after [data_backend] are there so a test can see that a rewrite keeps them byte for byte.
 */
export const INITIAL_PROCESSOR_INI = [
  '; production_config.ini of the job queue processor (demo)',
  '; Runbooks change [data_backend] through the config store; everything else stays as written.',
  '',
  '[SYSTEM]',
  'share_root = /mnt/optimizer_share',
  'max_workers = 4',
  '; keep this line: a rewrite must not touch other sections',
  'timezone = UTC',
  '',
  '[data_backend]',
  '; heavydb (old) | parquet (new)',
  'primary = heavydb',
  'secondary = parquet',
  '; also write every job to the other backend',
  'dual_write = false',
  '; share of jobs (by hash of the job id) routed to the secondary, 0-100',
  'cutover_percent = 0',
  'phase = primary-only',
  '',
  '[validation]',
  'validation_enabled = true',
  'rollback_on_validation_failure = true',
  'enable_strict_validation = false',
  '',
  '[monitoring]',
  'track_migration_metrics = true',
  'log_backend_performance = true',
  '',
  '[deployment]',
  'environment = blue',
  '',
].join('\n');

export interface JobProcessorFiles {
  dataDir: string;
  /** the spool root: jobs/{queue,processing,failed,completed}/ */
  root: string;
  ini: string;
  outputDir: string;
  quarantineDir: string;
  backupDir: string;
  logDir: string;
  faultsFile: string;
  pidFile: string;
  /** the process's stdout/stderr */
  logFile: string;
  workDir: string;
  lastKnownGoodDir: string;
  markerFile: string;
}

export const jobProcessorFiles = (dataDir: string): JobProcessorFiles => ({
  dataDir,
  root: dataDir,
  ini: join(dataDir, 'config', 'production_config.ini'),
  outputDir: join(dataDir, 'output'),
  quarantineDir: join(dataDir, 'quarantine'),
  backupDir: join(dataDir, 'output-backup'),
  logDir: join(dataDir, 'logs'),
  faultsFile: join(dataDir, 'faults.json'),
  pidFile: join(dataDir, 'processor.pid'),
  logFile: join(dataDir, 'processor.out'),
  workDir: join(dataDir, 'work'),
  lastKnownGoodDir: join(dataDir, 'last-known-good'),
  markerFile: join(dataDir, 'migration_start.timestamp'),
});

/**
 * The processor's INI file (`ini`, default INITIAL_PROCESSOR_INI; kept when it exists and `ini` is not given) and
 * the seed's migration_start.timestamp (the default `since` of failed-job replay): the migration began a week ago.
 */
export function writeProcessorConfig(iniFile: string, markerFile: string, ini?: string): void {
  mkdirSync(dirname(iniFile), { recursive: true });
  if (ini !== undefined || !existsSync(iniFile)) writeFileSync(iniFile, ini ?? INITIAL_PROCESSOR_INI);
  if (!existsSync(markerFile)) {
    const started = new Date(Date.now() - 7 * 24 * 3600_000);
    writeFileSync(markerFile, `${started.toISOString()}\n`);
    utimesSync(markerFile, started, started);
  }
}

export interface ProcessorTuning {
  pollMs?: number;
  workMs?: number;
  concurrency?: number;
}

/** The processor's command line (`table`: the Postgres source instead of the spool). */
export function jobProcessorCommand(
  files: JobProcessorFiles,
  port: number,
  o: ProcessorTuning & { table?: string } = {},
): string[] {
  return [
    process.execPath,
    join(repoRoot, 'src/demo/job-processor/service.mjs'),
    ...['--root', files.root, '--config', files.ini, '--port', String(port)],
    ...['--output', files.outputDir, '--log-dir', files.logDir, '--faults', files.faultsFile],
    ...(o.table ? ['--source', 'postgres', '--table', o.table] : []),
    ...['--poll', String(o.pollMs ?? 50), '--work-ms', String(o.workMs ?? 5)],
    ...['--concurrency', String(o.concurrency ?? 4)],
  ];
}

/** The emergency configuration (level 3) and the keys every phase is written through. */
export const PROCESSOR_KEYS = {
  primary: 'data_backend.primary',
  dualWrite: 'data_backend.dual_write',
  cutoverPercent: 'data_backend.cutover_percent',
  phase: 'data_backend.phase',
} as const;

const phaseValues = (primary: string, dualWrite: boolean, percent: number, phase: string) => ({
  [PROCESSOR_KEYS.primary]: primary,
  [PROCESSOR_KEYS.dualWrite]: String(dualWrite),
  [PROCESSOR_KEYS.cutoverPercent]: String(percent),
  [PROCESSOR_KEYS.phase]: phase,
});

/** The processor's "config loaded" log line for a phase's values (what a checkpoint validates after the restart). */
const loaded = (primary: string, secondary: string, dualWrite: boolean, percent: number) =>
  `Backend primary=${primary} secondary=${secondary} dual_write=${dualWrite} cutover_percent=${percent}`;

/**
 * The seed's rollback checkpoints (1.1–3.2) translated to this processor's INI keys. Every checkpoint that touches
 * the routing sets all four keys, so the result is always one of the phases (never "custom").
 */
export function processorCheckpoints(): Record<string, unknown> {
  const anyLoaded = { logPattern: 'INFO Backend primary=' };
  return {
    // 1.1 dual-write infrastructure fails: dual write off, HeavyDB only (seed: enable_dual_write=false,
    // migration_phase=heavydb_only); restarts the processor; validates the heavydb-only "config loaded" line.
    '1.1': {
      description: 'dual-write infrastructure rollback: heavydb only, dual write off',
      set: phaseValues('heavydb', false, 0, 'primary-only'),
      validate: { logPattern: loaded('heavydb', 'parquet', false, 0) },
    },
    // 1.2 validation framework causes performance issues: validation off (seed: validation_enabled=false,
    // rollback_on_validation_failure=false); routing untouched; restarts; validates that a configuration loaded.
    '1.2': {
      description: 'data validation framework rollback: validation off, routing unchanged',
      set: { 'validation.validation_enabled': 'false', 'validation.rollback_on_validation_failure': 'false' },
      validate: anyLoaded,
    },
    // 1.3 monitoring overhead: migration metrics and backend performance logging off (seed: track_migration_metrics,
    // log_backend_performance); routing untouched; restarts; validates that a configuration loaded.
    '1.3': {
      description: 'performance monitoring rollback: migration metrics off, routing unchanged',
      set: { 'monitoring.track_migration_metrics': 'false', 'monitoring.log_backend_performance': 'false' },
      validate: anyLoaded,
    },
    // 2.1 parquet shows errors during cut-over: all traffic to HeavyDB, dual write stays on (seed:
    // traffic_percentage_parquet=0, migration_phase=dual_write); restarts; validates the dual-write line.
    '2.1': {
      description: 'traffic routing rollback: cut-over 0%, dual write stays on',
      set: phaseValues('heavydb', true, 0, 'dual-write'),
      validate: { logPattern: loaded('heavydb', 'parquet', true, 0) },
    },
    // 2.2 green (parquet) fails: back to blue — HeavyDB primary, deployment environment blue (seed: DATA_BACKEND=heavydb,
    // deployment_environment=blue); dual write stays on; restarts; validates the dual-write line.
    '2.2': {
      description: 'blue-green rollback: heavydb primary, deployment blue',
      set: { ...phaseValues('heavydb', true, 0, 'dual-write'), 'deployment.environment': 'blue' },
      validate: { logPattern: loaded('heavydb', 'parquet', true, 0) },
    },
    // 2.3 data consistency issues: stop all processing, put back the last known good configuration, then HeavyDB
    // only with strict validation (seed: DATA_BACKEND=heavydb, enable_strict_validation=true); starts again;
    // validates the heavydb-only line.
    '2.3': {
      description: 'data consistency rollback: stop, last known good, heavydb only, strict validation',
      stopFirst: true,
      restoreLastKnownGood: true,
      set: { ...phaseValues('heavydb', false, 0, 'primary-only'), 'validation.enable_strict_validation': 'true' },
      validate: { logPattern: loaded('heavydb', 'parquet', false, 0) },
    },
    // 3.1 parquet performs worse than HeavyDB: full rollback to HeavyDB, dual write off (seed: DATA_BACKEND=heavydb,
    // migration_phase=heavydb_only, enable_dual_write=false); restarts; validates the heavydb-only line.
    '3.1': {
      description: 'performance regression rollback: heavydb only, dual write off',
      set: phaseValues('heavydb', false, 0, 'primary-only'),
      validate: { logPattern: loaded('heavydb', 'parquet', false, 0) },
    },
    // 3.2 system stability issues: emergency stop, put back the configuration backup (the last known good
    // snapshot) exactly, start again (seed: cp production_config.ini.heavydb_backup); validates that it loaded.
    '3.2': {
      description: 'system stability rollback: stop, the last known good configuration as it was, start',
      stopFirst: true,
      restoreLastKnownGood: true,
      set: {},
      validate: anyLoaded,
    },
  };
}

export interface JobProcessorEnvironmentOptions extends ProcessorTuning {
  environmentsDir: string;
  name: string;
  dataDir: string;
  port: number;
  /** the jobs table in the database JOBS_DATABASE_URL names, instead of the spool */
  postgresTable?: string;
  approval?: Record<string, unknown>;
  escalation?: Array<Record<string, unknown>>;
  /** top-level sections (lockWait, evidence, …) */
  sections?: Record<string, unknown>;
  /** merged over the target's soak section (window, interval, maxErrorRate, maxLatency, minJobs, unhealthyLooks) */
  soak?: Record<string, unknown>;
  /** merged over the replay section (stuckAfter, batch, concurrency, pace, markerFile, drainTimeout) */
  replay?: Record<string, unknown>;
  /** per-level approval of the emergency ladder: `automatic` or a policy */
  emergencyLevels?: Record<string, unknown>;
  /** endpoints.within: how long a runbook waits for a healthy answer (default 15s) */
  healthWithin?: string;
  /** false: no outputs.backupDir */
  backup?: boolean;
  /** merged over the whole migration section last */
  migration?: Record<string, unknown>;
  /** the INI file's initial text (default INITIAL_PROCESSOR_INI) */
  ini?: string;
}

/** Writes `<name>.yaml` with a `jobs` target and the processor's initial INI file; returns the files. */
export function writeJobProcessorEnvironment(
  o: JobProcessorEnvironmentOptions,
): JobProcessorFiles & { file: string; port: number } {
  const files = jobProcessorFiles(o.dataDir);
  for (const dir of [files.root, files.outputDir, files.logDir]) mkdirSync(dir, { recursive: true });
  writeProcessorConfig(files.ini, files.markerFile, o.ini ?? INITIAL_PROCESSOR_INI);
  const base = `http://127.0.0.1:${o.port}`;
  const migration = {
    description: 'demo job processor (src/demo/job-processor/service.mjs): heavydb → parquet',
    config: { type: 'ini', path: files.ini },
    keys: PROCESSOR_KEYS,
    backends: { old: 'heavydb', new: 'parquet' },
    cutoverSteps: [25, 50, 100],
    services: {
      processor: {
        type: 'process',
        command: jobProcessorCommand(files, o.port, { ...o, table: o.postgresTable }),
        pidFile: files.pidFile,
        logFile: files.logFile,
        reload: 'sighup',
        stopTimeout: '10s',
        ...(o.postgresTable && { passEnv: ['JOBS_DATABASE_URL'] }),
      },
    },
    endpoints: {
      health: `${base}/health`,
      metrics: `${base}/metrics`,
      timeout: '5s',
      within: o.healthWithin ?? '15s',
    },
    soak: {
      window: '2s',
      interval: '200ms',
      maxErrorRate: 0.05,
      maxLatency: '1s',
      minJobs: 1,
      unhealthyLooks: 2,
      ...o.soak,
    },
    checkpoints: processorCheckpoints(),
    rollbackCheckpoints: { 'dual-write': '1.1', 'cut-over': '2.1', 'new-only': '3.1' },
    workDir: files.workDir,
    lastKnownGood: { dir: files.lastKnownGoodDir },
    jobs: o.postgresTable
      ? { type: 'postgres', urlEnv: 'JOBS_DATABASE_URL', table: o.postgresTable }
      : { type: 'spool', root: files.root },
    logs: { dir: files.logDir, pattern: 'job_processor_*.log' },
    outputs: {
      dir: files.outputDir,
      summaryPattern: 'optimization_summary_*.txt',
      quarantineDir: files.quarantineDir,
      ...(o.backup !== false && { backupDir: files.backupDir }),
    },
    replay: {
      stuckAfter: '60m',
      batch: 10,
      concurrency: 2,
      pace: '100ms',
      markerFile: files.markerFile,
      drainTimeout: '2m',
      ...o.replay,
    },
    emergency: {
      set: phaseValues('heavydb', false, 0, 'primary-only'),
      levels: {
        restart: 'automatic',
        lastKnownGood: 'automatic',
        emergencyConfig: { quorum: 1 },
        ...o.emergencyLevels,
      },
      healthWithin: '15s',
    },
    ...o.migration,
  };
  const doc = {
    ...environmentHeader(o),
    targets: { jobs: { description: migration.description, migration } },
  };
  mkdirSync(o.environmentsDir, { recursive: true });
  const file = join(o.environmentsDir, `${o.name}.yaml`);
  writeFileSync(file, stringify(doc));
  return { ...files, file, port: o.port };
}
