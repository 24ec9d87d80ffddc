/**
 * The re-checks of `dual-write-check` against a full pass, in the same run, on the seed's pair (Postgres table
 * with stored fingerprints ↔ object store): DW_BENCH_OBJECTS objects (1M; BENCH_SMOKE 20k), identical on both
 * sides, then 100 changed rows (content and metadata changes, inserts and deletes, on both sides). Two re-checks:
 * summing every stored segment (src/activities/dual-write/incremental.ts, no tracking) and reading only the keys
 * the stores' change tracking marked (src/activities/dual-write/tracked.ts, `incremental.tracking: trigger`).
 * Goal: the re-check after the 100 changes in under 10 % of a full pass. Also what the tracking triggers cost
 * writers. `npx tsx bench/dual-write/incremental-main.ts` runs it and rewrites its block of BENCHMARKS.md.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { CHECK_SEGMENT_ROWS } from '../../src/activities/dual-write/check.js';
import { incrementalDiff, type CheckSegment } from '../../src/activities/dual-write/incremental.js';
import { readChanges, recheckKeys, type TrackingMarks } from '../../src/activities/dual-write/tracked.js';
import { LocalWorkStore } from '../../src/activities/dual-write/work-store/local.js';
import { readLines, writeLines } from '../../src/activities/dual-write/work-store/index.js';
import { diffStores, type DiffStats, type DriftEntry } from '../../src/activities/stores/diff.js';
import { ObjectStore } from '../../src/activities/stores/object-store.js';
import { PostgresTableStore } from '../../src/activities/stores/postgres-table.js';
import { seedDrift } from '../../src/demo/seed-drift.js';
import { freePort } from '../../src/dev/ports.js';
import { ensurePostgres } from '../../src/dev/postgres.js';
import { DETECTION_DEFAULTS } from '../../src/shared/constants.js';
import { machine, machineRows, runDate } from '../support/machine.js';
import type { Resources } from '../support/resources.js';
import { SMOKE, intEnv } from '../support/env.js';
import { fmtInt, fmtMs, timed } from './format.js';
import { CHANGES, changeRows, writeCostRows, writeCosts } from './incremental-writes.js';
import { objectIndexSeeder } from './seed.js';
import { DW_OBJECTS, FP_COLUMN } from './settings.js';

/** rows per stored segment (the runbook's CHECK_SEGMENT_ROWS unless DW_BENCH_CHECK_SEGMENT_ROWS says otherwise) */
const SEGMENT_ROWS = intEnv('DW_BENCH_CHECK_SEGMENT_ROWS', CHECK_SEGMENT_ROWS);
const RUNS = intEnv('DW_BENCH_INCREMENTAL_RUNS', SMOKE ? 1 : 3);
const GOAL = 0.1;
/** single-object puts per store for the write-cost measurement */
const WRITES = intEnv('DW_BENCH_TRACKING_WRITES', SMOKE ? 200 : 5000);
const WRITE_ROUNDS = SMOKE ? 1 : 3;

interface Measured {
  label: string;
  ms: number[];
  note: string;
}

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const keyOf = (e: DriftEntry) => `${e.objectId}@${e.version}:${e.class}`;

export async function runIncrementalBench(options: {
  resources: Resources;
  log?: (message: string) => void;
}): Promise<{ markdown: string; problems: string[] }> {
  const log = options.log ?? ((m: string) => void process.stderr.write(`[bench:dw-incremental] ${m}\n`));
  const resources = options.resources.nested();
  const date = runDate();
  const started = Date.now();
  const root = mkdtempSync(join(os.tmpdir(), 'durable-runbooks-dwi-bench-'));
  const pgDir = mkdtempSync(join(os.tmpdir(), 'durable-runbooks-dwi-bench-pg-'));
  resources.add(async () => {
    rmSync(root, { recursive: true, force: true });
    rmSync(pgDir, { recursive: true, force: true });
  });
  try {
    const postgres = await ensurePostgres({ dataDir: pgDir, port: await freePort(), database: 'dwi_bench' });
    resources.add(() => postgres.stop());
    const pool = new pg.Pool({ connectionString: postgres.url, max: 8 });
    pool.on('error', () => {});
    resources.add(() => pool.end());
    const pgVersion = (await pool.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
    const table = `dwi_${process.pid}`;
    const storeRoot = join(root, 'object-store');
    const columns = { fingerprint: FP_COLUMN };

    log(`seeding ${fmtInt(DW_OBJECTS)} identical objects into Postgres and the object store index`);
    const seeding = await timed(async () => {
      const a = new PostgresTableStore({ pool, table, create: true, columns });
      await a.init();
      const b = await objectIndexSeeder(storeRoot);
      await seedDrift(a, b, { objects: DW_OBJECTS, drift: {} });
      await b.close();
      await pool.query(`VACUUM ANALYZE ${pg.escapeIdentifier(table)}`);
    });
    const a = new PostgresTableStore({ pool, table, columns });
    const b = await ObjectStore.open(storeRoot);
    resources.add(async () => void (await Promise.all([a.close(), b.close()])));
    const stores = { a, b };
    const labels = { a: 'postgres', b: 'store' };
    const opts = {
      segmentRows: SEGMENT_ROWS,
      windowSegments: DETECTION_DEFAULTS.windowSegments,
      readRows: DETECTION_DEFAULTS.readRows,
    };
    const full = async () => {
      let stats: DiffStats | undefined;
      const out: DriftEntry[] = [];
      for await (const e of diffStores(a, b, {}, { onProgress: (s) => (stats = s) })) out.push(e);
      return { out, stats: stats! };
    };
    /** the tracked re-check as checkDrift runs it: both sides' marks since the stored ones, then those keys */
    const tracked = async (state: CheckSegment[], marks: TrackingMarks) => {
      const changes = await readChanges(stores, labels, marks, 50_000);
      if (!changes.ok) throw new Error(`change tracking not usable: ${changes.why}`);
      return recheckKeys(a, b, state, changes.keys);
    };
    const results: Measured[] = [];
    const repeat = async <T>(label: string, work: () => Promise<T>, note: (v: T) => string): Promise<T> => {
      const ms: number[] = [];
      let value: T | undefined;
      for (let i = 0; i < RUNS; i++) {
        const r = await timed(work);
        ms.push(r.ms);
        value = r.value;
      }
      results.push({ label, ms, note: note(value!) });
      log(`${label}: ${fmtMs(median(ms))}`);
      return value!;
    };

    await repeat('full pass (diffStores defaults, as detectDrift), consistent pair', full, (r) => streamed(r.stats));
    const first = await timed(() => incrementalDiff(a, b, undefined, opts));
    results.push({
      label: 'first check (cuts the segments, stores their summaries)',
      ms: [first.ms],
      note: `${fmtInt(first.value.stats.segments)} segments of ${SEGMENT_ROWS} rows; state ${stateBytes(first.value.segments)}`,
    });
    const unchanged = await repeat(
      're-check summing every segment, no change',
      () => incrementalDiff(a, b, first.value.segments, opts),
      (r) => incrementalNote(r.stats),
    );
    await repeat(
      'floor of summing: one whole-table sum per side (`summarize({})`, both sides at once), no segments',
      () => Promise.all([a.summarize({}), b.summarize({})]),
      (r) => `${fmtInt(r[0].count)} / ${fmtInt(r[1].count)} rows`,
    );

    // the operator installs tracking; the first check after it takes the marks, then sums every segment
    const install = await timed(() => Promise.all([a.tracking.install(), b.tracking.install()]));
    results.push({
      label: 'install change tracking on both sides (`runbook dual-write track`)',
      ms: [install.ms],
      note: 'changes table and triggers per side; no row rewritten',
    });
    const taken = await readChanges(stores, labels, undefined, 50_000);
    if (!taken.marks) throw new Error(`change tracking not intact: ${taken.ok ? '' : taken.why}`);
    const marks = taken.marks;
    const state = (await incrementalDiff(a, b, first.value.segments, opts)).segments;
    const quiet = await repeat(
      're-check with change tracking, no change',
      () => tracked(state, marks),
      (r) => trackedNote(r.stats),
    );

    log(`changing ${CHANGES} rows`);
    const changes = await changeRows(a, b);
    const fullAt = results.length;
    const truth = await repeat(
      `full pass after ${CHANGES} changed rows`,
      full,
      (r) => `${r.out.length} differ; ${streamed(r.stats)}`,
    );
    const summed = await repeat(
      `re-check summing every segment after ${CHANGES} changed rows (no tracking)`,
      () => incrementalDiff(a, b, state, opts),
      (r) => `${r.segments.flatMap((s) => s.drift).length} differ; ${incrementalNote(r.stats)}`,
    );
    const recheckAt = results.length;
    const recheck = await repeat(
      `**re-check with change tracking after ${CHANGES} changed rows**`,
      () => tracked(state, marks),
      (r) => `${r.segments.flatMap((s) => s.drift).length} differ; ${trackedNote(r.stats)}`,
    );
    // what checkDrift adds around it: the stored state read, the new state and the diff written (local workDir)
    const work = new LocalWorkStore(join(root, 'work'), 'dual-write-check--bench--objects');
    const stateRef = await writeLines(work, 'segments.jsonl', [{ kind: 'dual-write-check-state' }, ...state]);
    await repeat(
      'its state I/O in checkDrift: read segments.jsonl, write segments.jsonl and diff.jsonl (local workDir)',
      async () => {
        const lines = await readLines<unknown>(work, stateRef);
        const read: unknown[] = [];
        for await (const l of lines) read.push(l);
        await writeLines(work, 'segments.jsonl', read);
        await writeLines(
          work,
          'diff.jsonl',
          recheck.segments.flatMap((s) => s.drift),
        );
        return read.length;
      },
      (n) => `${fmtInt(n - 1)} segments, ${stateBytes(state)}`,
    );

    const problems: string[] = [];
    const expected = truth.out.map(keyOf);
    for (const [what, segments] of [
      ['tracked', recheck.segments],
      ['summing', summed.segments],
    ] as const) {
      const found = segments.flatMap((s) => s.drift.map(keyOf));
      if (JSON.stringify(found) !== JSON.stringify(expected))
        problems.push(`${what} re-check found ${found.length} differences, the full pass ${expected.length}`);
    }
    if (unchanged.stats.changed !== 0)
      problems.push(`re-check without changes saw ${unchanged.stats.changed} changed segments`);
    if (quiet.stats.keys !== 0) problems.push(`tracked re-check without changes read ${quiet.stats.keys} keys`);

    log(`write cost of the tracking triggers: ${WRITES} single-row writes, without and with, ${WRITE_ROUNDS} rounds`);
    const costs = await writeCosts(pool, `${table}_w`, root, WRITES, WRITE_ROUNDS);

    const fullMs = median(results[fullAt]!.ms);
    const recheckMs = median(results[recheckAt]!.ms);
    const ioMs = median(results[recheckAt + 1]!.ms);
    const share = recheckMs / fullMs;
    const m = machine();
    const lines = [
      `## Dual-write incremental re-check (run of ${date})`,
      '',
      `bench/dual-write/incremental.ts (\`npx tsx bench/dual-write/incremental-main.ts\`; took ${fmtMs(Date.now() - started)}, seeding ${fmtMs(seeding.ms)}). ` +
        `${fmtInt(DW_OBJECTS)} objects, identical on both sides, in a Postgres ${pgVersion} table with stored fingerprints (\`columns.fingerprint\`, trigger, covering index; VACUUM ANALYZE after seeding) and an object store index (stored \`fp\`, covering index). ` +
        `Change tracking (\`runbook dual-write track\`) is installed after the first check, as an operator would on existing stores. ` +
        `Then ${CHANGES} changed rows spread over the key space, written through the stores with the tracking triggers firing: ${changes}. Every measurement runs in this process on warm connections; ${RUNS === 1 ? 'one run each' : `median of ${RUNS} runs`} (first check and install once). Each re-check after the changes starts from the state and the marks the check before the changes stored.`,
      '',
      ...machineRows(m),
      `| Postgres | ${pgVersion} (embedded, default configuration, same machine) |`,
      '',
      `| | time${RUNS > 1 ? ' (median)' : ''} | vs full pass after the changes | |`,
      '|---|---:|---:|---|',
      ...results.map(
        (r) => `| ${r.label} | ${fmtMs(median(r.ms))} | ${((median(r.ms) / fullMs) * 100).toFixed(1)} % | ${r.note} |`,
      ),
      '',
      `- **Goal** (re-check of ${fmtInt(DW_OBJECTS)} objects after ${CHANGES} changed rows under ${GOAL * 100} % of a full pass): with change tracking ${share < GOAL ? '**met**' : '**not met**'} — ${(share * 100).toFixed(1)} % (${fmtMs(recheckMs)} vs ${fmtMs(fullMs)}); ${(((recheckMs + ioMs) / fullMs) * 100).toFixed(1)} % with checkDrift's state I/O (the full pass as detectDrift writes its diff file too, not counted here). Without tracking (summing every segment) ${((median(results[recheckAt - 1]!.ms) / fullMs) * 100).toFixed(1)} %.`,
      `- Correctness: both re-checks found exactly the ${expected.length} differences the full pass found: ${problems.length ? `**no** (${problems.join('; ')})` : 'yes'}.`,
      `- What the tracked re-check reads: per side, one REPEATABLE READ transaction (Postgres) / read transaction (SQLite index) with the tracking status (catalog rows: triggers, function, sentinel) and the changes-table rows marked after the stored mark (an index range scan on the xid / sequence column), then the metadata of exactly those keys on both sides (by primary key). No segment sum, no fingerprint list, nothing per unchanged row. Time grows with the keys changed since the last check, not with the table; above \`incremental.maxChangedKeys\` (default 50,000) a side falls back to summing every segment (the row above it). Not read at all: the object store's blobs — neither the full pass nor a re-check reads content; both compare the index's sha256, size and times.`,
      `- Why summing is not enough: every stored segment's summary on both sides is an index-only range sum over all rows — a re-check without changes is nothing else — and reading every row's stored fingerprint once per side (the floor row) bounds any re-check that reads the rows from below.`,
      '',
      `What the triggers cost writers: ${fmtInt(WRITES)} single-row writes updating existing keys, on stores of their own beside the pair, without tracking and with it installed, alternating (remove, install) ${WRITE_ROUNDS === 1 ? 'once' : `${WRITE_ROUNDS} times, medians`}. Each own transaction: Postgres waits for its WAL flush at every commit (default \`synchronous_commit\`), the object store's index is \`synchronous = FULL\` as ObjectStore opens it; one transaction shows what the triggers cost without that. A put of the object store also writes and fsyncs its blob (not counted here: it is the same with and without).`,
      '',
      ...writeCostRows(costs),
    ];
    return { markdown: lines.join('\n'), problems };
  } finally {
    await resources.stop();
  }
}

const streamed = (s: DiffStats) =>
  `mode ${s.mode}; ${fmtInt(s.summaries)} segment sums; rows streamed ${fmtInt(s.scannedA)} / ${fmtInt(s.scannedB)}`;
const incrementalNote = (s: {
  segments: number;
  changed: number;
  compared: number;
  scannedA: number;
  scannedB: number;
}) =>
  `${fmtInt(s.segments)} segments summed per side, ${s.changed} changed, ${s.compared} compared row by row; rows streamed ${fmtInt(s.scannedA)} / ${fmtInt(s.scannedB)}`;
const trackedNote = (s: { keys?: number; changed: number; scannedA: number; scannedB: number }) =>
  `${fmtInt(s.keys ?? 0)} keys marked changed, read by key on both sides (${fmtInt(s.scannedA)} / ${fmtInt(s.scannedB)} rows found); ${s.changed} segments touched; no segment summed`;
const stateBytes = (segments: CheckSegment[]) =>
  `${(segments.reduce((n, s) => n + JSON.stringify(s).length + 1, 0) / 1024).toFixed(0)} kB`;
