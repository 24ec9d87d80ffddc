/**
 * The SQLite sections of `npm run bench` on their own: `npx tsx bench/sqlite/main.ts` runs section 4 (the backup
 * bench, index.ts), `npx tsx bench/sqlite/main.ts rto` section 5 (the emergency restore's RTO, rto.ts, with a
 * Temporal dev server of its own); each prints its Markdown and rewrites its block of BENCHMARKS.md (not with
 * BENCH_SMOKE=1). Knobs: settings.ts.
 */
import { formatBenchmarksFile, writeSqliteResults, writeSqliteRtoResults } from '../support/benchmarks-file.js';
import { SMOKE } from '../support/env.js';
import { Resources, runMain } from '../support/resources.js';
import { installQuietRuntime } from '../support/runtime.js';
import { runSqliteBench, sqliteSmokeProblems } from './index.js';
import { runSqliteRto, sqliteRtoSmokeProblems } from './rto.js';

const resources = new Resources();

async function main(): Promise<void> {
  installQuietRuntime();
  const section =
    process.argv[2] === 'rto'
      ? await runSqliteRto({ resources }).then((b) => ({
          markdown: b.markdown,
          problems: () => sqliteRtoSmokeProblems(b),
          write: writeSqliteRtoResults,
        }))
      : await runSqliteBench({ resources }).then((b) => ({
          markdown: b.markdown,
          problems: () => sqliteSmokeProblems(b),
          write: writeSqliteResults,
        }));
  process.stdout.write(`${section.markdown}\n`);
  if (SMOKE) {
    const problems = section.problems();
    if (problems.length) throw new Error(`smoke run: ${problems.join('; ')}`);
  } else {
    section.write(section.markdown);
    await formatBenchmarksFile();
  }
}

runMain('bench', main, resources, { budgetMs: 30 * 60_000 });
