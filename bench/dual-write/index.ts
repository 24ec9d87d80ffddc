/**
 * Section 3 of `npm run bench`: dual-write drift detection at 1M objects, for the pairs Postgres ↔ object store
 * and Postgres ↔ SQLite, at 0.1 %, 1 % and 10 % drift; a naive export-and-sort baseline beside it; the repair of
 * the 1 % cases; and the resume cost of that repair after its worker process is SIGKILLed. `runDualWriteBench()`
 * returns the Markdown of the section (see BENCHMARKS.md). Knobs: settings.ts.
 *
 * For each drift level: seed.ts fills the stores of every case in one pass, profile.ts times single store calls
 * (first level), detect.ts runs every detection variant in a child process of its own (child.ts) and checks it
 * against the injected drift, repair.ts / repair-activities.ts / kill.ts repair the 1 % cases; report*.ts write
 * the Markdown. Everything it starts (world.ts) is stopped before it returns or throws.
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { repoRoot } from '../../src/dev/temporal-server.js';
import { runDate } from '../support/machine.js';
import type { Resources } from '../support/resources.js';
import { detectLevel, type CaseResult } from './detect.js';
import { killLevel, type KillResult } from './kill.js';
import { profileStores, type CostProfile } from './profile.js';
import { repairLevel, type RepairResult } from './repair.js';
import { dualWriteReport } from './report.js';
import { dropLevel, planLevel, seedLevel, type LevelSeed } from './seed.js';
import { DW_DRIFT_LEVELS, DW_REPAIR_LEVEL, KILL_RUN, REPAIR_MODE } from './settings.js';
import { openWorld } from './world.js';

export interface DualWriteBenchOptions {
  /** what the caller holds; the section's own are nested in it, and stopped when the section ends */
  resources: Resources;
  /** a running Temporal server (bench/run.ts passes its dev server); otherwise one is started when needed */
  temporalAddress?: string;
  log?: (message: string) => void;
}

export interface DualWriteBench {
  markdown: string;
  results: CaseResult[];
  repairs: RepairResult[];
  kill?: KillResult;
}

/** Runs section 3. Stops everything it started before returning or throwing. */
export async function runDualWriteBench(options: DualWriteBenchOptions): Promise<DualWriteBench> {
  const log = options.log ?? ((message: string) => void process.stderr.write(`[bench:dual-write] ${message}\n`));
  const resources = options.resources.nested();
  const date = runDate();
  const benchStarted = Date.now();
  let root: string | undefined;
  let ok = false;
  try {
    const world = await openWorld({ resources, temporalAddress: options.temporalAddress, log });
    root = world.root;
    const results: CaseResult[] = [];
    const seeds: LevelSeed[] = [];
    const repairs: RepairResult[] = [];
    const profiles: CostProfile[] = [];
    let kill: KillResult | undefined;
    const tablePrefix = `dwb_${process.pid}_${Date.now() % 100_000}`;

    for (const level of DW_DRIFT_LEVELS) {
      const repairing = level === DW_REPAIR_LEVEL && REPAIR_MODE !== 'skip';
      const lv = planLevel(level, world.root, tablePrefix, repairing, KILL_RUN);
      const { injected, seed } = await seedLevel(world.pool, lv, log);
      seeds.push(seed);
      if (level === DW_DRIFT_LEVELS[0]) {
        log('cost profile of each store');
        profiles.push(...(await profileStores(world.pgUrl, lv)));
      }
      results.push(...(await detectLevel(world, lv, injected)));
      if (repairing) {
        repairs.push(...(await repairLevel(world, lv, results)));
        if (lv.killCase) kill = await killLevel(world, lv, repairs);
      }
      await dropLevel(world.pool, lv);
    }

    const markdown = dualWriteReport({
      date,
      code: codeState(),
      pgVersion: world.pgVersion,
      sqliteVersion: world.sqliteVersion,
      embedded: world.embedded,
      results,
      seeds,
      repairs,
      profiles,
      kill,
      totalMs: Date.now() - benchStarted,
    });
    ok = true;
    return { markdown, results, repairs, kill };
  } finally {
    await resources.stop();
    if (root && ok) rmSync(root, { recursive: true, force: true });
    else if (root) log(`logs kept in ${root}`);
  }
}

/** What a smoke run (BENCH_SMOKE=1) must have shown: every detection exact, every repair and the kill run done. */
export function smokeProblems(bench: DualWriteBench): string[] {
  const problems: string[] = [];
  for (const r of bench.results) {
    const c = r.correctness;
    if (!r.result.finished || c.falsePositives || c.falseNegatives)
      problems.push(
        `${r.pair.label} ${r.level} ${r.variant}: ${r.result.finished ? '' : 'unfinished, '}${c.falsePositives} false positives, ${c.falseNegatives} false negatives`,
      );
  }
  if (REPAIR_MODE !== 'skip') {
    if (!bench.repairs.length) problems.push('no repair ran');
    for (const r of bench.repairs)
      if (!r.ok) problems.push(`${r.pair.label} repair (${r.mode}): ${r.error ?? 'failed'}`);
    if (KILL_RUN) {
      const k = bench.kill;
      if (!k?.ok) problems.push(`kill run: ${k?.error ?? 'not run'}`);
      else if (!Number.isFinite(k.retryStartedMs))
        problems.push('kill run: no retried execute attempt (the kill came too late)');
    }
  }
  return problems;
}

/** The commit measured, and uncommitted changes to the code detection and repair run (others may edit it meanwhile). */
function codeState(): string {
  try {
    // not trimmed: a porcelain line starts with its (possibly blank) status columns
    const git = (...args: string[]) => execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8', timeout: 10_000 });
    const head = git('rev-parse', '--short', 'HEAD').trim();
    const dirty = git(
      'status',
      '--porcelain',
      '--',
      'src/activities/stores',
      'src/activities/dual-write',
      'src/workflows/dual-write-rollback.ts',
    )
      .split('\n')
      .filter(Boolean)
      .map((line) => `\`${line.slice(3)}\``);
    return `commit ${head}${dirty.length ? `, with uncommitted changes to ${dirty.join(', ')}` : ', no uncommitted changes to the stores, the diff or the dual-write activities and workflow'}`;
  } catch {
    return 'unknown (git not available)';
  }
}
