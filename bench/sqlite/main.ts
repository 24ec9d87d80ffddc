/**
 * Section 4 of `npm run bench` on its own: `npx tsx bench/sqlite/main.ts` runs the SQLite backup bench (index.ts),
 * prints its Markdown and rewrites its block of BENCHMARKS.md (not with BENCH_SMOKE=1). Knobs: settings.ts.
 */
import { writeSqliteResults } from '../support/benchmarks-file.js';
import { SMOKE } from '../support/env.js';
import { Resources, runMain } from '../support/resources.js';
import { runSqliteBench, sqliteSmokeProblems } from './index.js';

const resources = new Resources();

async function main(): Promise<void> {
  const bench = await runSqliteBench({ resources });
  process.stdout.write(`${bench.markdown}\n`);
  if (SMOKE) {
    const problems = sqliteSmokeProblems(bench);
    if (problems.length) throw new Error(`smoke run: ${problems.join('; ')}`);
  } else writeSqliteResults(bench.markdown);
}

runMain('bench', main, resources, { budgetMs: 30 * 60_000 });
