/**
 * Section 3 of `npm run bench` on its own: `npx tsx bench/dual-write/main.ts` runs the dual-write detection bench
 * (index.ts), prints its Markdown and rewrites its block of BENCHMARKS.md (not with DW_BENCH_WRITE=0 or
 * BENCH_SMOKE=1). It starts a Temporal dev server only if repairs run. Knobs: settings.ts.
 */
import { formatBenchmarksFile, writeDualWriteResults } from '../support/benchmarks-file.js';
import { SMOKE } from '../support/env.js';
import { Resources, runMain } from '../support/resources.js';
import { installQuietRuntime } from '../support/runtime.js';
import { runDualWriteBench, smokeProblems } from './index.js';

const resources = new Resources();

async function main(): Promise<void> {
  installQuietRuntime();
  const bench = await runDualWriteBench({ resources });
  process.stdout.write(`${bench.markdown}\n`);
  if (SMOKE) {
    const problems = smokeProblems(bench);
    if (problems.length) throw new Error(`smoke run: ${problems.join('; ')}`);
  } else if (process.env.DW_BENCH_WRITE !== '0') {
    writeDualWriteResults(bench.markdown);
    await formatBenchmarksFile();
  }
}

runMain('bench', main, resources, { budgetMs: 30 * 60_000 });
