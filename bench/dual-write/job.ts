/** What the parent (detect.ts) hands a detection child (child.ts) and gets back. */
import type { DiffStats } from '../../src/activities/stores/diff.js';

/** `fingerprint`: the stored fingerprint column (columns.fingerprint), as the bench seeds it */
export type SideSpec =
  | { type: 'postgres'; table: string; fingerprint?: string }
  | { type: 'sqlite'; path: string; table: string; fingerprint?: string }
  | { type: 'object-store'; root: string };

export interface DetectJob {
  variant: 'diff' | 'merge' | 'naive';
  pgUrl: string;
  a: SideSpec;
  b: SideSpec;
  outFile: string;
  /** stop (and report a partial result) once detection has run this long */
  budgetMs: number;
  /** RSS sampling interval */
  sampleMs: number;
  /** page size of the naive export */
  exportPageSize: number;
}

export interface DetectResult {
  variant: DetectJob['variant'];
  ms: number;
  finished: boolean;
  entries: number;
  stats: DiffStats;
  /** RSS (bytes) after opening the stores, before detection */
  rssBaseline: number;
  /** max of the samples taken every sampleMs during detection (and one at the end) */
  rssPeak: number;
  samples: number;
  /** the kernel's RSS high-water mark (VmHWM) since the baseline, when Linux lets us reset it; else null */
  kernelPeak: number | null;
  /** naive only: time spent exporting, sorting, merging */
  phases?: Record<string, number>;
  /** where each side's fingerprints come from (fingerprintSource()): 'stored' is what the runbook ships */
  fingerprints: { a: string; b: string };
}
