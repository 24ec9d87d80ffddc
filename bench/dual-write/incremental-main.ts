/**
 * `npx tsx bench/dual-write/incremental-main.ts`: the incremental re-check bench (incremental.ts) on its own; prints
 * its Markdown and rewrites its block of BENCHMARKS.md (not with DW_BENCH_WRITE=0 or BENCH_SMOKE=1).
 */
import { formatBenchmarksFile, writeDualWriteIncrementalResults } from '../support/benchmarks-file.js';
import { SMOKE } from '../support/env.js';
import { Resources, runMain } from '../support/resources.js';
import { runIncrementalBench } from './incremental.js';

const resources = new Resources();

async function main(): Promise<void> {
  const bench = await runIncrementalBench({ resources });
  process.stdout.write(`${bench.markdown}\n`);
  if (bench.problems.length) throw new Error(`incremental bench: ${bench.problems.join('; ')}`);
  if (!SMOKE && process.env.DW_BENCH_WRITE !== '0') {
    writeDualWriteIncrementalResults(bench.markdown);
    await formatBenchmarksFile();
  }
}

runMain('bench', main, resources, { budgetMs: 30 * 60_000 });
