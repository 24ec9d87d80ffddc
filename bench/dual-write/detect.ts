/**
 * The detection cases: each variant (diffStores defaults, the streaming merge, the naive baseline) of each case
 * of a drift level, each run in a child process of its own (child.ts) and checked against the injected drift.
 */
import { spawn } from 'node:child_process';
import { closeSync, createReadStream, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { DRIFT_CLASSES, type DriftClass } from '../../src/activities/stores/diff.js';
import { compareKeys, keyString } from '../../src/activities/stores/fingerprint.js';
import type { ObjectKey } from '../../src/activities/stores/types.js';
import type { InjectedDrift } from '../../src/demo/seed-drift.js';
import { repoRoot } from '../../src/dev/temporal-server.js';
import type { Resources } from '../support/resources.js';
import { fmtInt, fmtMB, fmtMs, fmtRate, pct } from './format.js';
import type { DetectJob, DetectResult } from './job.js';
import type { Level } from './seed.js';
import type { DualWriteWorld } from './world.js';
import {
  DW_DETECT_BUDGET_MS,
  DW_DIFF_RUNS,
  DW_EXPORT_PAGE,
  DW_OBJECTS,
  DW_OTHER_BUDGET_MS,
  DW_SAMPLE_MS,
  VARIANTS,
  type Pair,
  type Variant,
} from './settings.js';

const childEntry = fileURLToPath(new URL('child.ts', import.meta.url));

export interface Correctness {
  detected: number;
  falsePositives: number;
  /** null when the detection did not finish (then only keys up to `checkedUpTo` are checked) */
  falseNegatives: number;
  checkedUpTo?: string;
  byClass: Record<DriftClass, number>;
}

export interface CaseResult {
  pair: Pair;
  level: number;
  rowsA: number;
  rowsB: number;
  variant: Variant;
  /** the run with the median time */
  result: DetectResult;
  /** every run's time (the default detection runs DW_DIFF_RUNS times, each in a fresh child process) */
  runsMs: number[];
  /** the worst of the runs' (each run is checked) */
  correctness: Correctness;
}

function runChild(resources: Resources, job: DetectJob, logFile: string): Promise<DetectResult> {
  return new Promise((resolve, reject) => {
    const err = openSync(logFile, 'a');
    const child = spawn(process.execPath, ['--import', 'tsx', childEntry, JSON.stringify(job)], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', err],
    });
    closeSync(err);
    resources.children.push(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const guard = setTimeout(() => child.kill('SIGKILL'), job.budgetMs + 120_000);
    child.once('exit', (code, signal) => {
      clearTimeout(guard);
      resources.children.splice(resources.children.indexOf(child), 1);
      const line = out.trim().split('\n').pop();
      if (code === 0 && line) {
        try {
          resolve(JSON.parse(line) as DetectResult);
          return;
        } catch {
          // fall through
        }
      }
      reject(new Error(`detection child (${job.variant}) exited with ${signal ?? code}; see ${logFile}`));
    });
  });
}

/** Compares the detected (objectId, version, class) set with the injected one, exactly. */
async function checkDetected(outFile: string, injected: InjectedDrift[], finished: boolean): Promise<Correctness> {
  const expected = new Set(injected.map((d) => `${keyString(d)} ${d.class}`));
  const seen = new Set<string>();
  const byClass = Object.fromEntries(DRIFT_CLASSES.map((c) => [c, 0])) as Record<DriftClass, number>;
  let detected = 0;
  let falsePositives = 0;
  let last: ObjectKey | undefined;
  const lines = createInterface({ input: createReadStream(outFile), crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line) continue;
    const e = JSON.parse(line) as InjectedDrift;
    const id = `${keyString(e)} ${e.class}`;
    detected++;
    byClass[e.class]++;
    // a duplicate counts as a false positive too
    if (!expected.has(id) || seen.has(id)) falsePositives++;
    seen.add(id);
    if (!last || compareKeys(e, last) > 0) last = { objectId: e.objectId, version: e.version };
  }
  // unfinished: bisection and merge both go in key order, so every injected key up to the last one reported must be there
  const due = finished ? injected : last ? injected.filter((d) => compareKeys(d, last) <= 0) : [];
  const falseNegatives = due.filter((d) => !seen.has(`${keyString(d)} ${d.class}`)).length;
  return {
    detected,
    falsePositives,
    falseNegatives,
    checkedUpTo: finished ? undefined : last ? keyString(last) : '(nothing reported)',
    byClass,
  };
}

/** Every variant of every case of the level, checked against the injected drift. */
export async function detectLevel(world: DualWriteWorld, lv: Level, injected: InjectedDrift[]): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  const rowsA = await Promise.all(
    lv.cases.map(async (c) => {
      const rows = await world.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${pg.escapeIdentifier(c.a.table)}`);
      return Number(rows.rows[0]!.n);
    }),
  );
  const rowsB = DW_OBJECTS - lv.perClass;
  for (const [i, c] of lv.cases.entries()) {
    for (const variant of VARIANTS) {
      const outFile = join(lv.dir, `${c.pair.id}-${variant}.jsonl`);
      const job: DetectJob = {
        variant,
        pgUrl: world.pgUrl,
        a: c.a,
        b: c.b,
        outFile,
        budgetMs: variant === 'diff' ? DW_DETECT_BUDGET_MS : DW_OTHER_BUDGET_MS,
        sampleMs: DW_SAMPLE_MS,
        exportPageSize: DW_EXPORT_PAGE,
      };
      // the default detection takes about a second, so one cold run is noisy: take the median of several
      const runs: Array<{ result: DetectResult; correctness: Correctness }> = [];
      for (let run = 0; run < (variant === 'diff' ? DW_DIFF_RUNS : 1); run++) {
        const r = await runChild(world.resources, job, join(world.root, 'children.log'));
        runs.push({ result: r, correctness: await checkDetected(outFile, injected, r.finished) });
        rmSync(outFile, { force: true });
      }
      const byTime = [...runs].sort((x, y) => x.result.ms - y.result.ms);
      const { result } = byTime[Math.floor((byTime.length - 1) / 2)]!;
      const correctness = runs
        .map((r) => r.correctness)
        .reduce((worst, c) =>
          c.falsePositives + c.falseNegatives > worst.falsePositives + worst.falseNegatives ? c : worst,
        );
      results.push({
        pair: c.pair,
        level: lv.level,
        rowsA: rowsA[i]!,
        rowsB,
        variant,
        result,
        runsMs: runs.map((r) => r.result.ms),
        correctness,
      });
      const rows = (result.stats.rowsA + result.stats.rowsB) / 2;
      world.log(
        `${c.pair.label} ${pct(lv.level)} ${variant}: ${fmtMs(result.ms)}${result.finished ? '' : ' (stopped: budget)'}, ${fmtRate(rows / (result.ms / 1000))}, streamed ${fmtInt(result.stats.scannedA)}/${fmtInt(result.stats.scannedB)}, ${fmtInt(result.stats.summaries)} summaries, RSS peak ${fmtMB(result.rssPeak)} (+${fmtMB(result.rssPeak - result.rssBaseline)}), FP ${correctness.falsePositives} FN ${correctness.falseNegatives}`,
      );
    }
  }
  return results;
}
