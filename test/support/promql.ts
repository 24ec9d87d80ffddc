import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'le',
]);

/**
 * The metric names a PromQL expression selects: label matchers, strings, ranges and grouping clauses removed,
 * then every identifier that is not a function call, a keyword or a number.
 */
export function metricNamesOf(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const after = stripped.slice(m.index + m[0].length).trimStart();
    if (after.startsWith('(') || KEYWORDS.has(m[0])) continue;
    names.add(m[0]);
  }
  return [...names];
}

/** Label values an expression matches for `label` (= and =~ with a plain alternation). */
export function labelValuesOf(expr: string, label: string): string[] {
  const out: string[] = [];
  for (const m of expr.matchAll(new RegExp(`\\b${label}\\s*(=~|=)\\s*"([^"]*)"`, 'g')))
    out.push(...(m[1] === '=~' ? m[2]!.split('|') : [m[2]!]));
  return out;
}

/**
 * The metric names the worker exports: every createCounter / createGauge / createHistogram in `dirs` (a histogram
 * as its _bucket, _sum and _count series), as the Prometheus exporter names them.
 */
export function exportedMetricNames(dirs: string[]): Set<string> {
  const names = new Set<string>();
  const visit = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (entry.name.endsWith('.ts'))
        for (const m of readFileSync(path, 'utf8').matchAll(
          /create(Counter|Gauge|Histogram)\(\s*'([a-z_:][a-z0-9_:]*)'/g,
        )) {
          if (m[1] === 'Histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${m[2]}${s}`);
          else names.add(m[2]!);
        }
    }
  };
  for (const dir of dirs) visit(dir);
  return names;
}
