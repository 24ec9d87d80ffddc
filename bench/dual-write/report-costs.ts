/** Section 3's Markdown, the cost profile: one call per store (profile.ts), and what this run's numbers say. */
import type { CaseResult } from './detect.js';
import { fmtInt, fmtMs, pct } from './format.js';
import type { CostProfile } from './profile.js';
import { DIFF_DEFAULTS, DW_DRIFT_LEVELS, PAIRS, PROFILE_FP_SEGMENTS } from './settings.js';

export function costsReport(profiles: CostProfile[], results: CaseResult[]): string[] {
  if (!profiles.length) return [];
  const lines = [
    '',
    `### Where the time goes: one call per store (${pct(DW_DRIFT_LEVELS[0])} case, ${fmtInt(profiles[0]!.rows)} rows)`,
    '',
    `| store | \`summarize()\` whole table | per row | \`stepKeys\` whole table, step ${DIFF_DEFAULTS.segmentRows} (all windows' cuts) | \`summarizeRanges\` of one window (${fmtInt(DIFF_DEFAULTS.windowSegments)} segments) | \`fingerprintLists\` of ${fmtInt(PROFILE_FP_SEGMENTS)} spread segments | \`scan()\` page of ${fmtInt(DIFF_DEFAULTS.pageSize)} at the start | \`scan()\` page of ${fmtInt(DIFF_DEFAULTS.pageSize)} at 15/16 of the keys |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...profiles.map(
      (p) =>
        `| ${p.store} | ${fmtMs(p.fullSummarizeMs)} | ${((p.fullSummarizeMs * 1000) / p.rows).toFixed(2)} µs | ${fmtMs(p.stepKeysMs)} (${fmtInt(p.segments)} segments) | ${fmtMs(p.windowSummarizeMs)} (${fmtInt(p.windowRows)} rows) | ${fmtMs(p.fingerprintsMs)} (${fmtInt(p.fingerprintRows)} rows) | ${fmtMs(p.firstPageMs)} | ${fmtMs(p.lastPageMs)} |`,
    ),
    '',
  ];
  return [...lines, ...findings(profiles, results)];
}

/** Observations computed from this run's numbers. */
function findings(profiles: CostProfile[], results: CaseResult[]): string[] {
  const out: string[] = [];
  const segments = (p: CostProfile) => p.segments;
  for (const p of profiles) {
    if (p.planNote) out.push(`- ${p.store}: ${p.planNote}.`);
    const windows = Math.ceil(segments(p) / DIFF_DEFAULTS.windowSegments);
    out.push(
      `- ${p.store}: the whole-table sum from stored fingerprints costs ${((p.fullSummarizeMs * 1000) / p.rows).toFixed(2)} µs/row; one window's ${fmtInt(DIFF_DEFAULTS.windowSegments)} segment sums (${fmtInt(p.windowRows)} rows) ${fmtMs(p.windowSummarizeMs)} (${((p.windowSummarizeMs * 1000) / Math.max(1, p.windowRows)).toFixed(2)} µs/row; ${windows} windows cover the table, ≈ ${fmtMs(p.windowSummarizeMs * windows)}); the fingerprint lists of ${fmtInt(PROFILE_FP_SEGMENTS)} spread segments (${fmtInt(p.fingerprintRows)} rows) ${fmtMs(p.fingerprintsMs)}; \`stepKeys\` over the whole table ${fmtMs(p.stepKeysMs)}${p.store.startsWith('Postgres') ? ' (not used: detection lets the in-process SQLite side cut the segments)' : ''}.`,
    );
    if (p.lastPageMs > 5 * p.firstPageMs && p.lastPageMs > 20) {
      out.push(
        `- ${p.store}: a \`scan()\` page at 15/16 of the keys takes ${fmtMs(p.lastPageMs)}, the first ${fmtMs(p.firstPageMs)}: each keyset page walks the table from its start, so a full scan is quadratic in pages.`,
      );
    }
  }
  for (const pair of PAIRS) {
    const diffs = DW_DRIFT_LEVELS.map((level) =>
      results.find((r) => r.pair.id === pair.id && r.level === level && r.variant === 'diff'),
    ).filter((r): r is CaseResult => Boolean(r?.result.finished));
    if (!diffs.length) continue;
    out.push(
      `- ${pair.label}, default detection: ${diffs
        .map((r) => {
          const streamed = (r.result.stats.scannedA + r.result.stats.scannedB) / 2;
          const differing = Math.min(1, DIFF_DEFAULTS.segmentRows * r.level);
          return `at ${pct(r.level)} ${fmtMs(r.result.ms)}, ${fmtInt(streamed)} rows per side streamed (fingerprints of the segments read as lists, plus the metadata of unmatched rows) (${((streamed / Math.max(1, r.rowsA)) * 100).toFixed(1)} %; with one drifted object every ${fmtInt(1 / r.level)}, ~${(differing * 100).toFixed(0)} % of the ${DIFF_DEFAULTS.segmentRows}-row segments differ)`;
        })
        .join(
          '; ',
        )}. The time grows with the share of differing segments, whose fingerprints are read as lists and compared in Node (past ${DIFF_DEFAULTS.listAbove * 100} % of a window's segments differing, every segment's list is read instead of its sums).`,
    );
  }
  return out;
}
