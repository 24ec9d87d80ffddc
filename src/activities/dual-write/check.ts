import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { canonicalJson } from '../../shared/canonical-json.js';
import { DETECTION_DEFAULTS } from '../../shared/constants.js';
import { parseDuration } from '../../shared/duration.js';
import type { ObjectStoreConfig } from '../../shared/schemas.js';
import { sha256 } from '../digest.js';
import { emptyCounts, type DriftClass } from '../stores/diff.js';
import { compareKeys } from '../stores/fingerprint.js';
import type { DualWriteContext, Target } from './context.js';
import { detect, inconsistencyGauge } from './detect.js';
import { canCheckIncrementally, incrementalDiff, type CheckSegment, type IncrementalStats } from './incremental.js';
import { readChanges, recheckKeys, type TrackedChanges, type TrackingMarks } from './tracked.js';
import type { FileRef } from './types.js';
import { readLines, refOf, writeLines, type WorkStore } from './work-store/index.js';

export const CHECK_STATE_FILE = 'segments.jsonl';
export const CHECK_DIFF_FILE = 'diff.jsonl';
/** rows per stored segment: big enough that summing every segment stays near a whole-table sum, small enough to compare */
export const CHECK_SEGMENT_ROWS = 1024;

export type CheckSeverity = 'none' | 'warning' | 'critical';

/** The first line of the stored state: what its summaries may be trusted for. */
export interface CheckStateHeader {
  kind: 'dual-write-check-state';
  version: 1;
  /** digest of both sides' configuration and the detection settings: any change starts a full pass */
  config: string;
  /** what each side is (database system, table oid; file inode): a restored or replaced side starts a full pass */
  identity: { a: string; b: string };
  segments: number;
  total: number;
  severity: CheckSeverity;
  checkedAt: string;
  /** where both sides' change tracking was read up to before this state's pass (when intact on both) */
  tracking?: TrackingMarks;
  /** when a pass last summed every segment (a tracked re-check keeps its predecessor's) */
  summarizedAt?: string;
}

export interface CheckResult {
  /**
   * tracked: only the keys the stores' change tracking marked were read; incremental: every stored segment was
   * summed; full: the segments were cut again; merge: both sides streamed
   */
  mode: 'tracked' | 'incremental' | 'full' | 'merge';
  /** why a full pass (no state yet, configuration or identity changed, state unreadable), or why not tracked */
  why?: string;
  /** with `incremental.tracking: trigger`: whether the change tracking was used, and if not why */
  tracking?: string;
  total: number;
  counts: Record<DriftClass, number>;
  severity: CheckSeverity;
  /** the last check's, when a stored state was read */
  previous?: { total: number; severity: CheckSeverity; checkedAt: string };
  stats?: IncrementalStats;
  diff: FileRef;
  state?: FileRef;
  durationMs: number;
}

/** The work store of the target's checks: one per environment and target, kept between runs. */
const checkKey = (ref: { environment: string; target: string }) =>
  `dual-write-check--${ref.environment}--${ref.target}`;
export const checkWork = (c: DualWriteContext, target: Target, ref: { environment: string; target: string }) =>
  c.work(target, checkKey(ref));

const fileIdentity = async (path: string): Promise<string> => {
  const s = await stat(path).catch(() => undefined);
  return s ? `${s.dev}:${s.ino}:${Math.round(s.birthtimeMs || s.ctimeMs)}` : 'missing';
};

/** What a side is, beyond its configuration: a side restored, recreated or swapped under the same name differs. */
async function sideIdentity(c: DualWriteContext, target: Target, side: ObjectStoreConfig): Promise<string> {
  const path = target.t.resolvePath;
  switch (side.type) {
    case 'postgres': {
      const { rows } = await c.deps.stores
        .pool(side.urlEnv)
        .query<{ id: string }>(
          `SELECT concat_ws(':', (SELECT system_identifier FROM pg_control_system()), current_database(), to_regclass($1)::oid) AS id`,
          [side.table],
        );
      return `postgres:${rows[0]!.id}`;
    }
    case 'sqlite':
      return `sqlite:${await fileIdentity(path(side.path))}`;
    case 'object-store':
      return `object-store:${await fileIdentity(join(path(side.root), 'index.sqlite'))}`;
  }
}

export const severityOf = (total: number, criticalCount: number): CheckSeverity =>
  total === 0 ? 'none' : total >= criticalCount ? 'critical' : 'warning';

/** The header of the target's stored check state (what the last check stored), if there is one. */
export async function storedCheckHeader(work: WorkStore): Promise<CheckStateHeader | undefined> {
  const ref = await work.latest(CHECK_STATE_FILE);
  if (!ref) return undefined;
  const lines = await readLines<CheckStateHeader>(work, ref);
  const first = (await lines.next()).value as CheckStateHeader | undefined;
  await lines.return(undefined);
  return first?.kind === 'dual-write-check-state' ? first : undefined;
}

/** The stored state, or why it cannot be used. */
async function loadState(
  work: WorkStore,
  header: Pick<CheckStateHeader, 'config' | 'identity'>,
): Promise<{ header?: CheckStateHeader; segments?: CheckSegment[]; why?: string }> {
  const ref = await work.latest(CHECK_STATE_FILE);
  if (!ref) return { why: 'no stored segment summaries yet' };
  try {
    const lines = await readLines<CheckStateHeader | CheckSegment>(work, ref);
    const first = (await lines.next()).value as CheckStateHeader | undefined;
    if (first?.kind !== 'dual-write-check-state' || first.version !== 1) return { why: 'stored state unreadable' };
    const previous = first;
    if (first.config !== header.config) return { header: previous, why: 'configuration changed' };
    if (first.identity.a !== header.identity.a) return { header: previous, why: 'side a is not the same store' };
    if (first.identity.b !== header.identity.b) return { header: previous, why: 'side b is not the same store' };
    const segments: CheckSegment[] = [];
    for await (const s of lines) segments.push(s as CheckSegment);
    // the segments must partition the key space: increasing ends, the last one open
    const ordered = segments.every((s, i) =>
      i + 1 < segments.length ? s.to && (i === 0 || compareKeys(segments[i - 1]!.to!, s.to) < 0) : !s.to,
    );
    if (segments.length !== first.segments || !segments.length || !ordered)
      return { header: previous, why: 'stored state incomplete' };
    return { header: previous, segments };
  } catch {
    return { why: 'stored state unreadable' };
  }
}

/**
 * Detection only, kept between runs: compares the pair against the segment summaries the last check stored in the
 * target's work store (see incrementalDiff), writes the differences and the new state, and sets the
 * `dual_write_inconsistency_detected` gauge (0 when consistent). Reads both stores, changes neither. A retry starts
 * over (the state is replaced only at the end, whole).
 */
export async function checkDrift(
  c: DualWriteContext,
  ref: { environment: string; target: string; runKey: string },
): Promise<CheckResult> {
  const target = await c.target(ref);
  const { dw } = target;
  const started = Date.now();
  const work = checkWork(c, target, ref);
  const criticalCount = dw.severity.criticalCount;
  return c.withStores(target, { readOnly: true }, async (stores) => {
    const incremental = dw.detection.mode === 'bisect' && canCheckIncrementally(stores.a, stores.b);
    if (!incremental) {
      // merge-only stores: a full streaming comparison every time (nothing to keep)
      const r = await detect(c, { ...ref, runKey: checkKey(ref), phase: 'check' });
      return {
        mode: 'merge' as const,
        why: 'the stores cannot summarize key ranges (detection.mode merge, or no fingerprints)',
        total: r.total,
        counts: r.counts,
        severity: severityOf(r.total, criticalCount),
        diff: refOf(r),
        durationMs: Date.now() - started,
      };
    }
    const config = sha256(
      canonicalJson({ a: dw.a, b: dw.b, detection: dw.detection, segmentRows: CHECK_SEGMENT_ROWS, v: 1 }),
    );
    const identity = {
      a: await sideIdentity(c, target, dw.a),
      b: await sideIdentity(c, target, dw.b),
    };
    const loaded = await loadState(work, { config, identity });
    const inc = dw.incremental;
    // the marks first: whatever is written after them is read again by the next check
    const tracked =
      inc.tracking === 'trigger'
        ? await readChanges(stores, dw.labels, loaded.segments && loaded.header?.tracking, inc.maxChangedKeys)
        : undefined;
    const summarizedAt = loaded.header?.summarizedAt ?? loaded.header?.checkedAt;
    const due = summarizedAt !== undefined && started - Date.parse(summarizedAt) >= parseDuration(inc.fullPassEvery);
    const ctx = Context.current();
    let run: { segments: CheckSegment[]; stats: IncrementalStats };
    let mode: CheckResult['mode'];
    let why = loaded.why;
    const tracking = tracked && trackingNote(tracked, due, inc.fullPassEvery);
    if (tracked?.ok && loaded.segments && !due) {
      run = await recheckKeys(stores.a, stores.b, loaded.segments, tracked.keys, {
        onProgress: (keys) => ctx.heartbeat({ phase: 'check', keys }),
      });
      mode = 'tracked';
    } else {
      run = await incrementalDiff(stores.a, stores.b, loaded.segments, {
        segmentRows: CHECK_SEGMENT_ROWS,
        windowSegments: dw.detection.windowSegments,
        readRows: DETECTION_DEFAULTS.readRows,
        onProgress: (s) => ctx.heartbeat({ phase: 'check', segments: s.segments, rowsA: s.rowsA, rowsB: s.rowsB }),
      });
      mode = loaded.segments ? 'incremental' : 'full';
      if (mode === 'incremental' && tracking) why = `change tracking ${tracking}`;
    }
    if (tracked && !tracked.ok && !tracked.marks)
      c.log.warn(
        { target: `${ref.environment}/${ref.target}`, why: tracked.why },
        'dual-write change tracking unusable',
      );
    const { segments, stats } = run;
    const counts = emptyCounts();
    let total = 0;
    for (const s of segments)
      for (const e of s.drift) {
        counts[e.class]++;
        total++;
      }
    const severity = severityOf(total, criticalCount);
    const diff = await writeLines(
      work,
      CHECK_DIFF_FILE,
      (function* () {
        for (const s of segments) yield* s.drift;
      })(),
    );
    const header: CheckStateHeader = {
      kind: 'dual-write-check-state',
      version: 1,
      config,
      identity,
      segments: segments.length,
      total,
      severity,
      checkedAt: new Date().toISOString(),
      ...(tracked?.marks ? { tracking: tracked.marks } : {}),
      summarizedAt: mode === 'tracked' ? summarizedAt! : new Date(started).toISOString(),
    };
    const state = await writeLines(work, CHECK_STATE_FILE, [header, ...segments]);
    inconsistencyGauge().set(total, { environment: ref.environment, target: ref.target });
    c.log.info({ target: `${ref.environment}/${ref.target}`, mode, tracking, total, stats }, 'dual-write check');
    const previous = loaded.header && {
      total: loaded.header.total,
      severity: loaded.header.severity,
      checkedAt: loaded.header.checkedAt,
    };
    return {
      mode,
      ...(why ? { why } : {}),
      ...(tracking ? { tracking } : {}),
      total,
      counts,
      severity,
      ...(previous ? { previous } : {}),
      stats,
      diff: refOf(diff),
      state: refOf(state),
      durationMs: Date.now() - started,
    };
  });
}

/** What the check says about its change tracking: used, or why not. */
function trackingNote(t: TrackedChanges, due: boolean, every: string): string {
  if (!t.ok) return `not used: ${t.why}`;
  if (due) return `not used: a pass over every segment is due (incremental.fullPassEvery ${every})`;
  return `used: ${t.keys.length} keys marked changed`;
}
