#!/usr/bin/env node
// The demo job processor the backend-migration runbooks act on (docs/backend-migration.md is its contract): takes
// jobs from a spool (or a Postgres table), routes each to a data backend by the INI file's [data_backend] section
// (re-read on SIGHUP), writes an output run directory per job, logs one line per event, and serves /health,
// /metrics (prom-client), /stats, POST /faults and POST /wedge.
//
//   service.mjs --root <spool root> --config <ini file> --port <n> [--output <dir>] [--log-dir <dir>]
//               [--faults <file>] [--source spool|postgres --table <t>] [--poll <ms>] [--work-ms <ms>]
//               [--concurrency <n>]
//
// The backends are simulated: a job "on" a backend takes --work-ms, unless the fault switch says that backend
// fails, is slow or returns nothing (an empty output). SIGTERM/SIGINT: no new claims, the jobs in flight finish.
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import {
  BACKENDS,
  checkFaults,
  hits,
  readBackendConfig,
  readFaults,
  route,
  routedBackends,
  writeFaults,
} from './config.mjs';
import { createMetrics } from './metrics.mjs';
import { PostgresSource, SpoolSource } from './sources.mjs';

const { values: args } = parseArgs({
  options: {
    root: { type: 'string' },
    config: { type: 'string' },
    port: { type: 'string', default: '8791' },
    output: { type: 'string' },
    'log-dir': { type: 'string' },
    faults: { type: 'string' },
    source: { type: 'string', default: 'spool' },
    table: { type: 'string', default: 'jobs' },
    poll: { type: 'string', default: '50' },
    'work-ms': { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '4' },
  },
});
const num = (name, min) => {
  const n = Number(args[name]);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be an integer >= ${min}`);
    process.exit(2);
  }
  return n;
};
if (!args.root || !args.config || !['spool', 'postgres'].includes(args.source)) {
  console.error('usage: service.mjs --root <dir> --config <ini> --port <n> [--source spool|postgres --table <t>] …');
  process.exit(2);
}
if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$/.test(args.table)) {
  console.error(`--table must be an SQL identifier, got ${args.table}`);
  process.exit(2);
}
const port = num('port', 0);
const pollMs = num('poll', 1);
const workMs = num('work-ms', 0);
const concurrency = num('concurrency', 1);
const root = resolve(args.root);
const configFile = resolve(args.config);
const outputDir = resolve(args.output ?? join(root, 'output'));
const logDir = resolve(args['log-dir'] ?? join(root, 'logs'));
const faultsFile = resolve(args.faults ?? join(root, 'faults.json'));
mkdirSync(outputDir, { recursive: true });
mkdirSync(logDir, { recursive: true });

// ---- the processing log: job_processor_<YYYY-MM-DD>.log, one line per event

function log(level, message) {
  const now = new Date().toISOString();
  appendFileSync(join(logDir, `job_processor_${now.slice(0, 10)}.log`), `${now} ${level} ${message}\n`);
}

// ---- configuration

let config;
let reloads = 0;
function loadConfig() {
  try {
    config = readBackendConfig(configFile);
  } catch (err) {
    config = { problem: `cannot read ${configFile}: ${err.message}` };
  }
  if (config.problem) log('ERROR', `Backend configuration invalid: ${config.problem}`);
  else
    log(
      'INFO',
      `Backend primary=${config.primary} secondary=${config.secondary} dual_write=${config.dualWrite} cutover_percent=${config.cutoverPercent}`,
    );
}
loadConfig();
process.on('SIGHUP', () => {
  reloads += 1;
  loadConfig();
});

const source = args.source === 'postgres' ? await openPostgres() : new SpoolSource(root);
async function openPostgres() {
  const url = process.env.JOBS_DATABASE_URL;
  if (!url) {
    console.error('--source postgres needs JOBS_DATABASE_URL');
    process.exit(2);
  }
  return PostgresSource.open(url, args.table);
}

let wedged = false;
const stats = { pid: process.pid, processed: 0, failed: 0, dualWriteFailures: 0, emptyOutputs: 0 };
const metrics = createMetrics({
  depth: () => source.depth(),
  config: () => config,
  faults: () => readFaults(faultsFile),
  wedged: () => wedged,
});

// ---- one job

let runSeq = 0;
const stamp = (d) => d.toISOString().replace(/[-:]/g, '').replace('.', '').replace('Z', '');
const sha256 = (text) => createHash('sha256').update(text).digest('hex');

/** `run_<timestamp>_<n>/` with the summary, then manifest.json last. */
async function writeOutput(c, backend, seconds, empty) {
  let run;
  for (;;) {
    run = `run_${stamp(new Date())}_${(runSeq++).toString().padStart(4, '0')}`;
    try {
      await mkdir(join(outputDir, run));
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
  }
  const name = `optimization_summary_${c.id}.txt`;
  const summary = empty
    ? ''
    : [
        `job: ${c.id}`,
        `backend: ${backend}`,
        `Execution Time: ${seconds.toFixed(3)}`,
        `result: ${sha256(JSON.stringify(c.payload))}`,
        `replay: ${c.replay ?? '-'}`,
        'END',
        '',
      ].join('\n');
  await writeFile(join(outputDir, run, name), summary);
  const tmp = join(outputDir, run, '.manifest.json.tmp');
  await writeFile(tmp, `${JSON.stringify({ files: { [name]: sha256(summary) } }, null, 2)}\n`);
  await rename(tmp, join(outputDir, run, 'manifest.json'));
  return run;
}

async function backendWork(fault) {
  if (fault?.mode === 'fail') throw new Error('backend unavailable (fault)');
  if (fault?.mode === 'slow') await sleep(fault.ms ?? 1000);
  await sleep(workMs);
}

async function processJob(c, cfg) {
  const { backend, dual } = route(c.id, cfg);
  const replay = c.replay ?? '-';
  const started = performance.now();
  log('INFO', `Processing job ${c.id} backend=${backend} replay=${replay}`);
  try {
    if (c.problem) throw new Error(c.problem);
    const faults = readFaults(faultsFile);
    const fault = hits(faults[backend]) ? faults[backend] : undefined;
    await backendWork(fault);
    if (dual) {
      try {
        await backendWork(hits(faults[dual]) ? faults[dual] : undefined);
        log('INFO', `Dual write job ${c.id} secondary=${dual}`);
      } catch (err) {
        stats.dualWriteFailures += 1;
        metrics.dualWriteFailed.inc({ backend: dual });
        log('WARN', `Dual write failed job ${c.id} secondary=${dual} error=${err.message}`);
      }
    }
    const empty = fault?.mode === 'empty';
    const seconds = (performance.now() - started) / 1000;
    const run = await writeOutput(c, backend, seconds, empty);
    await source.complete(c);
    if (empty) {
      stats.emptyOutputs += 1;
      metrics.emptyOutputs.inc({ backend });
    }
    stats.processed += 1;
    metrics.processed.inc({ backend });
    metrics.duration.observe({ backend }, seconds);
    log(
      'INFO',
      `Completed job ${c.id} backend=${backend} ms=${Math.round(seconds * 1000)} output=${run} replay=${replay}`,
    );
  } catch (err) {
    const message = String(err.message).replace(/\s+/g, ' ');
    await source.fail(c, message);
    stats.failed += 1;
    metrics.failed.inc({ backend });
    metrics.duration.observe({ backend }, (performance.now() - started) / 1000);
    log('ERROR', `Failed job ${c.id} backend=${backend} error=${message} replay=${replay}`);
  }
}

// ---- the loop: up to --concurrency jobs in flight

const inflight = new Set();
/** between taking jobs out of the queue and counting them in flight */
let claiming = false;
let stopping = false;
let wake = () => {};
const nap = (ms) =>
  new Promise((r) => {
    const t = setTimeout(r, ms);
    wake = () => {
      clearTimeout(t);
      r();
    };
  });

async function loop() {
  while (!stopping) {
    if (wedged || config.problem || inflight.size >= concurrency) {
      await nap(pollMs);
      continue;
    }
    let claimed = [];
    claiming = true;
    try {
      claimed = await source.claim(concurrency - inflight.size);
    } catch (err) {
      log('ERROR', `Claim failed error=${String(err.message).replace(/\s+/g, ' ')}`);
    }
    if (claimed.length === 0) {
      claiming = false;
      await nap(pollMs);
      continue;
    }
    const cfg = config;
    for (const c of claimed) {
      const p = processJob(c, cfg)
        .catch((err) => log('ERROR', `Job ${c.id} not settled error=${err.message}`))
        .finally(() => {
          inflight.delete(p);
          wake();
        });
      inflight.add(p);
    }
    claiming = false;
  }
}

// ---- HTTP

function healthProblems() {
  const problems = [];
  if (wedged) problems.push('wedged: restart required');
  if (config.problem) problems.push(`configuration invalid: ${config.problem}`);
  else {
    const faults = readFaults(faultsFile);
    for (const b of routedBackends(config))
      if (faults[b]?.mode === 'fail') problems.push(`backend ${b} failing (fault)`);
  }
  return problems;
}

const readBody = (req) =>
  new Promise((res, rej) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => res(body));
    req.on('error', rej);
  });

const server = createServer(async (req, res) => {
  const send = (status, body, type = 'text/plain') => {
    res.writeHead(status, { 'content-type': type });
    res.end(body);
  };
  try {
    if (req.method === 'GET' && req.url === '/health') {
      const problems = healthProblems();
      if (problems.length) return send(503, `unhealthy: ${problems.join('; ')}\n`);
      const faults = Object.entries(readFaults(faultsFile)).map(([b, f]) => `${b}=${f.mode}`);
      return send(200, `healthy\n${faults.length ? `faults: ${faults.join(' ')}\n` : ''}`);
    }
    if (req.method === 'GET' && req.url === '/metrics') return send(200, await metrics.text(), metrics.contentType);
    if (req.method === 'GET' && req.url === '/stats') {
      const body = {
        ...stats,
        reloads,
        wedged,
        inflight: inflight.size,
        claiming,
        config,
        faults: readFaults(faultsFile),
      };
      return send(200, JSON.stringify(body), 'application/json');
    }
    if (req.method === 'POST' && req.url === '/faults') {
      let faults;
      try {
        faults = checkFaults(JSON.parse(await readBody(req)));
      } catch (err) {
        return send(400, `${err.message}\n`);
      }
      writeFaults(faultsFile, faults);
      return send(200, JSON.stringify(faults), 'application/json');
    }
    if (req.method === 'POST' && req.url === '/wedge') {
      wedged = true;
      log('WARN', 'Processor wedged (POST /wedge): unhealthy until restarted');
      return send(200, 'wedged\n');
    }
    send(404, 'not found\n');
  } catch (err) {
    send(500, `${err.message}\n`);
  }
});
server.listen(port, '127.0.0.1');

async function shutdown() {
  if (stopping) return;
  stopping = true;
  wake();
  await running;
  await Promise.allSettled([...inflight]);
  server.close();
  await source.close();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());
for (const b of BACKENDS) metrics.touch(b);
const running = loop();
