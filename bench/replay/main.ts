/**
 * Section 6 of `npm run bench` on its own: `npx tsx bench/replay/main.ts` (a Temporal dev server of its own);
 * prints its Markdown and rewrites its block of BENCHMARKS.md (not with BENCH_SMOKE=1).
 */
import { formatBenchmarksFile, writeReplayResults } from '../support/benchmarks-file.js';
import { SMOKE } from '../support/env.js';
import { Resources, runMain } from '../support/resources.js';
import { installQuietRuntime } from '../support/runtime.js';
import { replaySmokeProblems, runReplayBench } from './index.js';

const resources = new Resources();

async function main(): Promise<void> {
  installQuietRuntime();
  const bench = await runReplayBench({ resources });
  process.stdout.write(`${bench.markdown}\n`);
  if (SMOKE) {
    const problems = replaySmokeProblems(bench);
    if (problems.length) throw new Error(`smoke run: ${problems.join('; ')}`);
  } else {
    writeReplayResults(bench.markdown);
    await formatBenchmarksFile();
  }
}

runMain('bench', main, resources, { budgetMs: 30 * 60_000 });
