/**
 * One dual-write detection measurement in a process of its own (spawned by bench/dual-write.ts), so that its
 * peak RSS is the detection's alone and not the bench runner's (Temporal runtime, earlier sections, seeding).
 *
 * argv[2] is a JSON DetectJob. The child opens both stores, records its baseline RSS, then runs one variant:
 * - `diff`: diffStores with its defaults (bisect: windows of 4096 segments of 48 rows, summed by both stores
 *   from their stored fingerprints; only differing segments' fingerprint lists compared), as detectDrift runs it;
 * - `merge`: diffStores with `mergeOnly` (the streaming merge);
 * - `naive`: both sides exported completely into arrays, sorted and merged in Node, then classified.
 * Every differing entry is written to `outFile` as a JSON line (as detectDrift writes its diff file), for the
 * parent to compare with the injected drift. The result is one JSON line on stdout.
 */
import { closeSync, createWriteStream, openSync, readFileSync, writeSync } from 'node:fs';
import { once } from 'node:events';
import pg from 'pg';
import {
  classify,
  diffStores,
  type DiffOptions,
  type DiffStats,
  type DriftEntry,
} from '../src/activities/stores/diff.js';
import { compareKeys } from '../src/activities/stores/fingerprint.js';
import { ObjectStore } from '../src/activities/stores/object-store.js';
import { PostgresTableStore } from '../src/activities/stores/postgres-table.js';
import { SqliteTableStore } from '../src/activities/stores/sqlite-table.js';
import type { ObjectMeta, ObjectStoreAdapter } from '../src/activities/stores/types.js';

/** `fingerprint`: the stored fingerprint column (columns.fingerprint), as the bench seeds it */
export type SideSpec =
  | { type: 'postgres'; table: string; fingerprint?: string }
  | { type: 'sqlite'; path: string; table: string; fingerprint?: string }
  | { type: 'object-store'; root: string };

export interface DetectJob {
  variant: 'diff' | 'merge' | 'naive';
  pgUrl: string;
  a: SideSpec;
  b: SideSpec;
  outFile: string;
  /** stop (and report a partial result) once detection has run this long */
  budgetMs: number;
  /** RSS sampling interval */
  sampleMs: number;
  /** page size of the naive export */
  exportPageSize: number;
}

export interface DetectResult {
  variant: DetectJob['variant'];
  ms: number;
  finished: boolean;
  entries: number;
  stats: DiffStats;
  /** RSS (bytes) after opening the stores, before detection */
  rssBaseline: number;
  /** max of the samples taken every sampleMs during detection (and one at the end) */
  rssPeak: number;
  samples: number;
  /** the kernel's RSS high-water mark (VmHWM) since the baseline, when Linux lets us reset it; else null */
  kernelPeak: number | null;
  /** naive only: time spent exporting, sorting, merging */
  phases?: Record<string, number>;
  /** where each side's fingerprints come from (fingerprintSource()): 'stored' is what the runbook ships */
  fingerprints: { a: string; b: string };
}

class BudgetExceeded extends Error {}

function openSide(spec: SideSpec, pool: pg.Pool): ObjectStoreAdapter {
  switch (spec.type) {
    case 'postgres':
      return new PostgresTableStore({
        pool,
        table: spec.table,
        columns: spec.fingerprint ? { fingerprint: spec.fingerprint } : undefined,
      });
    case 'sqlite':
      return new SqliteTableStore({
        path: spec.path,
        table: spec.table,
        columns: spec.fingerprint ? { fingerprint: spec.fingerprint } : undefined,
      });
    case 'object-store':
      return new ObjectStore({ root: spec.root });
  }
}

/** Resets the kernel's peak-RSS counter (Linux ≥ 4.0: write 5 to clear_refs); false where that is not possible. */
function resetKernelPeak(): boolean {
  try {
    const fd = openSync('/proc/self/clear_refs', 'w');
    try {
      writeSync(fd, '5');
    } finally {
      closeSync(fd);
    }
    return true;
  } catch {
    return false;
  }
}

function kernelPeak(): number | null {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

async function exportAll(store: ObjectStoreAdapter, pageSize: number): Promise<ObjectMeta[]> {
  const rows: ObjectMeta[] = [];
  for await (const page of store.scan({}, pageSize)) for (const row of page) rows.push(row);
  return rows;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]!) as DetectJob;
  const pool = new pg.Pool({ connectionString: job.pgUrl, max: 8 });
  pool.on('error', () => {});
  const a = openSide(job.a, pool);
  const b = openSide(job.b, pool);
  const out = createWriteStream(job.outFile);
  const write = async (entry: DriftEntry) => {
    if (!out.write(`${JSON.stringify(entry)}\n`)) await once(out, 'drain');
  };
  try {
    // connect the pool and touch both stores before the baseline, so it includes what any detection needs
    await pool.query('SELECT 1');
    for await (const _page of a.scan({}, 1)) break;
    for await (const _page of b.scan({}, 1)) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
    const rssBaseline = process.memoryUsage.rss();
    const canReset = resetKernelPeak();
    let rssPeak = rssBaseline;
    let samples = 0;
    const sample = () => {
      const rss = process.memoryUsage.rss();
      samples++;
      if (rss > rssPeak) rssPeak = rss;
    };
    const sampler = setInterval(sample, job.sampleMs);
    const started = performance.now();
    const deadline = started + job.budgetMs;
    const overBudget = () => performance.now() > deadline;
    let stats: DiffStats = {
      rowsA: 0,
      rowsB: 0,
      scannedA: 0,
      scannedB: 0,
      listedA: 0,
      listedB: 0,
      listBytesA: 0,
      listBytesB: 0,
      summaries: 0,
      mode: job.variant === 'diff' ? 'bisect' : 'merge',
    };
    let entries = 0;
    let finished = true;
    const phases: Record<string, number> = {};
    try {
      if (job.variant === 'naive') {
        const t0 = performance.now();
        const [ra, rb] = await Promise.all([exportAll(a, job.exportPageSize), exportAll(b, job.exportPageSize)]);
        const t1 = performance.now();
        ra.sort(compareKeys);
        rb.sort(compareKeys);
        const t2 = performance.now();
        let i = 0;
        let j = 0;
        while (i < ra.length || j < rb.length) {
          const x = ra[i];
          const y = rb[j];
          const order = !x ? 1 : !y ? -1 : compareKeys(x, y);
          const left = order <= 0 ? x : undefined;
          const right = order >= 0 ? y : undefined;
          if (left) i++;
          if (right) j++;
          const cls = classify(left, right);
          if (cls) {
            const key = (left ?? right)!;
            entries++;
            await write({ objectId: key.objectId, version: key.version, class: cls, a: left, b: right });
          }
        }
        const t3 = performance.now();
        phases.export = t1 - t0;
        phases.sort = t2 - t1;
        phases.mergeClassify = t3 - t2;
        stats = {
          rowsA: ra.length,
          rowsB: rb.length,
          scannedA: ra.length,
          scannedB: rb.length,
          listedA: 0,
          listedB: 0,
          listBytesA: 0,
          listBytesB: 0,
          summaries: 0,
          mode: 'merge',
        };
        sample();
      } else {
        const options: DiffOptions = {
          mergeOnly: job.variant === 'merge',
          onProgress: (s) => {
            stats = s;
            if (overBudget()) throw new BudgetExceeded();
          },
        };
        try {
          for await (const entry of diffStores(a, b, {}, options)) {
            entries++;
            await write(entry);
            if (overBudget()) throw new BudgetExceeded();
          }
        } catch (error) {
          if (!(error instanceof BudgetExceeded)) throw error;
          finished = false;
        }
      }
      out.end();
      await once(out, 'finish');
    } finally {
      clearInterval(sampler);
    }
    const ms = performance.now() - started;
    sample();
    const fingerprints = { a: a.fingerprintSource?.() ?? 'none', b: b.fingerprintSource?.() ?? 'none' };
    const result: DetectResult = {
      variant: job.variant,
      ms,
      finished,
      entries,
      stats,
      rssBaseline,
      rssPeak,
      samples,
      kernelPeak: canReset ? kernelPeak() : null,
      phases,
      fingerprints,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await Promise.all([a.close(), b.close()]);
    await pool.end();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
