/**
 * One dual-write detection measurement in a process of its own (spawned by detect.ts), so that its peak RSS is
 * the detection's alone and not the bench runner's (Temporal runtime, earlier sections, seeding).
 *
 * argv[2] is a JSON DetectJob (job.ts). The child opens both stores, records its baseline RSS, then runs one variant:
 * - `diff`: diffStores with its defaults (bisect: windows of segments summed by both stores from their stored
 *   fingerprints; only differing segments' fingerprint lists compared), as detectDrift runs it;
 * - `merge`: diffStores with `mergeOnly` (the streaming merge);
 * - `naive`: the export-and-sort baseline (naive.ts).
 * Every differing entry is written to `outFile` as a JSON line (as detectDrift writes its diff file), for the
 * parent to compare with the injected drift. The result is one JSON line on stdout.
 */
import { closeSync, createWriteStream, openSync, readFileSync, writeSync } from 'node:fs';
import { once } from 'node:events';
import {
  diffStores,
  emptyStats,
  type DiffOptions,
  type DiffStats,
  type DriftEntry,
} from '../../src/activities/stores/diff.js';
import type { DetectJob, DetectResult } from './job.js';
import { naiveDiff } from './naive.js';
import { withSides } from './sides.js';

class BudgetExceeded extends Error {}

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

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]!) as DetectJob;
  const result = await withSides(job.pgUrl, job, async (a, b, pool): Promise<DetectResult> => {
    const out = createWriteStream(job.outFile);
    const write = async (entry: DriftEntry) => {
      if (!out.write(`${JSON.stringify(entry)}\n`)) await once(out, 'drain');
    };
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
    let stats: DiffStats = emptyStats(job.variant === 'diff' ? 'bisect' : 'merge');
    let entries = 0;
    let finished = true;
    let phases: Record<string, number> = {};
    try {
      if (job.variant === 'naive') {
        ({ entries, stats, phases } = await naiveDiff(a, b, job.exportPageSize, write));
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
    return {
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
      fingerprints: { a: a.fingerprintSource?.() ?? 'none', b: b.fingerprintSource?.() ?? 'none' },
    };
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
