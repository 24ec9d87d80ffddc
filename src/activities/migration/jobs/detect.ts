import { open, readFile, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ReplayKind } from '../../../shared/schemas.js';
import { parseDuration } from '../../../shared/duration.js';
import { sha256 } from '../../digest.js';
import { ensurePrivateDir } from '../../files.js';
import type { JobRecord, JobSource, JobState } from '../types.js';
import { jobTarget, type JobActivityDeps, type JobTarget, type TargetRef } from './context.js';
import { planText, writePlanFile, type PlanEntry, type PlanKind } from './plan-file.js';
import { jobsWithOutput, scanLogs } from './scan.js';

export interface DetectInput extends TargetRef {
  /** `<workflowId>/<first run id>`: names the run's staging file */
  runKey: string;
  kinds: ReplayKind[];
  since?: string;
  stuckAfter: string;
  limit?: number;
  /** replay exactly these (detection skipped) */
  jobs?: string[];
  /** nothing is written: the plan's digest is computed, no file kept */
  dryRun: boolean;
}

/** A job found but not planned: gone from every state, or queued / being processed right now. */
type Note = 'missing' | 'active';
interface Found {
  id: string;
  kind: PlanKind;
  from?: JobState;
  /** the job's file (the spool) */
  name?: string;
  note?: Note;
}

export interface ReplayPlan {
  /** the plan file (absent in a dry run) */
  path?: string;
  sha256: string;
  total: number;
  counts: Record<PlanKind, number>;
  /** the first entries, for the plan and status (the whole list is only in the file) */
  sample: PlanEntry[];
  /** jobs a log or the input names that exist in no state (not replayable) */
  missing: { count: number; sample: string[] };
  /** jobs a log or the input names that are queued or processing now (not replayed) */
  active: { count: number; sample: string[] };
  /** failed jobs counted from this time on, and where the time came from */
  since: { at?: string; from: 'input' | 'marker' | 'all' };
  stuckBefore: string;
  /** `limit` cut the list */
  truncated: boolean;
  source: string;
  logs: { files: number; lines: number };
}

const PAGE = 1000;
const PHASES = ['requested', 'failed', 'stuck', 'incomplete', 'gap'] as const;
type Phase = (typeof PHASES)[number];

interface Cursor {
  phase: Phase;
  afterId?: string;
  bytes: number;
  /** the time detection started: stuck is judged against it on every attempt */
  startedAt: number;
}

function previous(): Cursor | undefined {
  try {
    const d = Context.current().info.heartbeatDetails as Partial<Cursor> | undefined;
    if (!d || !PHASES.includes(d.phase as Phase) || typeof d.bytes !== 'number') return undefined;
    return d as Cursor;
  } catch {
    return undefined;
  }
}

function heartbeat(c: Cursor): void {
  try {
    Context.current().heartbeat(c);
  } catch {
    // outside an activity (tests, the benchmark's direct calls)
  }
}

/** What detection found so far: in memory, and (not in a dry run) appended to a staging file a retry resumes. */
class Findings {
  readonly list: Found[] = [];
  readonly seen = new Set<string>();
  planned = 0;
  bytes = 0;
  constructor(
    private readonly file: FileHandle | undefined,
    private readonly limit: number,
  ) {}

  static async open(path: string | undefined, resume: Cursor | undefined, limit: number): Promise<Findings> {
    if (!path) return new Findings(undefined, limit);
    let fh: FileHandle | undefined;
    if (resume) {
      fh = await open(path, 'r+').catch(() => undefined);
      if (fh && (await fh.stat()).size < resume.bytes) {
        await fh.close();
        fh = undefined;
      }
    }
    if (!fh || !resume) {
      await fh?.close();
      const f = new Findings(await open(path, 'w', 0o600), limit);
      return f;
    }
    await fh.truncate(resume.bytes);
    const f = new Findings(fh, limit);
    const text = (await readFile(path, 'utf8')).slice(0, resume.bytes);
    for (const line of text.split('\n').filter(Boolean)) f.remember(JSON.parse(line) as Found);
    f.bytes = resume.bytes;
    return f;
  }

  private remember(x: Found): void {
    this.list.push(x);
    this.seen.add(x.id);
    if (!x.note) this.planned += 1;
  }

  get full(): boolean {
    return this.planned >= this.limit;
  }

  async add(items: Found[]): Promise<void> {
    const added: Found[] = [];
    for (const x of items) {
      if (this.seen.has(x.id)) continue;
      if (!x.note && this.full) break;
      this.remember(x);
      added.push(x);
    }
    if (!this.file || added.length === 0) return;
    const chunk = Buffer.from(added.map((x) => `${JSON.stringify(x)}\n`).join(''));
    await this.file.write(chunk, 0, chunk.length, this.bytes);
    this.bytes += chunk.length;
    await this.file.datasync();
  }

  async close(): Promise<void> {
    await this.file?.close();
  }
}

/** The time failed jobs are counted from: the input's, else the marker file's mtime, else all. */
async function sinceOf(t: JobTarget, input?: string): Promise<ReplayPlan['since']> {
  if (input) return { at: new Date(Date.parse(input)).toISOString(), from: 'input' };
  const marker = t.m.replay.markerFile;
  if (!marker) return { from: 'all' };
  const s = await stat(t.t.resolvePath(marker)).catch(() => undefined);
  return s ? { at: new Date(s.mtimeMs).toISOString(), from: 'marker' } : { from: 'all' };
}

/** Every job of `states` from the cursor on, page by page, heartbeating the cursor after each page. */
async function pages(
  source: JobSource,
  states: JobState[],
  cursor: Cursor,
  each: (page: JobRecord[]) => Promise<void>,
  f: Findings,
): Promise<void> {
  for (;;) {
    if (f.full) return;
    const page = await source.list(states, { afterId: cursor.afterId, limit: PAGE });
    if (page.length === 0) return;
    await each(page);
    cursor.afterId = page[page.length - 1]!.id;
    cursor.bytes = f.bytes;
    heartbeat(cursor);
  }
}

/**
 * Looks each job up (a job that is not JSON stops detection here, before anything changed) and classifies it: a job
 * queued or processing now is active (not replayed), except a stuck one, whose state is `processing`.
 */
async function lookUp(source: JobSource, ids: string[], kind: PlanKind): Promise<Found[]> {
  const out: Found[] = [];
  for (const id of ids) {
    const job = await source.get(id);
    if (!job) out.push({ id, kind, note: 'missing' });
    else if (job.state === 'queue' || (job.state === 'processing' && kind !== 'stuck'))
      out.push({ id, kind, from: job.state, note: 'active' });
    else out.push({ id, kind, from: job.state, ...(job.name ? { name: job.name } : {}) });
  }
  return out;
}

/** Looks up named jobs (the input's, the logs'), in id order from the cursor on, a page at a time. */
async function idPages(source: JobSource, named: string[], kind: PlanKind, cursor: Cursor, f: Findings): Promise<void> {
  const ids = [...new Set(named)].sort().filter((id) => cursor.afterId === undefined || id > cursor.afterId);
  for (let i = 0; i < ids.length && !f.full; i += PAGE) {
    const slice = ids.slice(i, i + PAGE);
    await f.add(await lookUp(source, slice, kind));
    Object.assign(cursor, { afterId: slice[slice.length - 1], bytes: f.bytes });
    heartbeat(cursor);
  }
}

/**
 * Detection (seed "Detect Missed Jobs"): failed jobs since a time, jobs stuck in processing, completed jobs without
 * an output, and processing-log gaps — or exactly the jobs the input names. Pages through the source heartbeating
 * its cursor (a retry resumes from it); every planned job is read once, so a job that is not JSON is InvalidInput
 * naming it before anything changes. The list goes to a content-addressed plan file; history gets the digest,
 * the counts and a sample.
 */
export async function detectReplayJobs(deps: JobActivityDeps, input: DetectInput): Promise<ReplayPlan> {
  const t = await jobTarget(deps, input);
  const { source } = t;
  const resume = previous();
  const cursor: Cursor = resume ?? { phase: input.jobs ? 'requested' : 'failed', bytes: 0, startedAt: Date.now() };
  const since = await sinceOf(t, input.since);
  const stuckBefore = cursor.startedAt - parseDuration(input.stuckAfter);
  const staging = input.dryRun
    ? undefined
    : join(t.workDir, 'replay-detect', `${sha256(input.runKey).slice(0, 24)}.jsonl`);
  if (staging) await ensurePrivateDir(join(t.workDir, 'replay-detect'));
  const f = await Findings.open(staging, resume, input.limit ?? Number.MAX_SAFE_INTEGER);
  const logs = { files: 0, lines: 0 };
  const order = input.jobs ? (['requested'] as const) : PHASES.filter((p) => p !== 'requested');
  const wanted = new Set<string>(input.jobs ? ['requested'] : input.kinds);
  try {
    for (const phase of order.slice(Math.max(0, order.indexOf(cursor.phase as never)))) {
      if (cursor.phase !== phase) Object.assign(cursor, { phase, afterId: undefined, bytes: f.bytes });
      heartbeat(cursor);
      if (!wanted.has(phase) || f.full) continue;
      switch (phase) {
        case 'requested':
          await idPages(source, input.jobs ?? [], 'requested', cursor, f);
          break;
        case 'failed':
        case 'stuck': {
          const state = phase === 'failed' ? 'failed' : 'processing';
          const from = phase === 'failed' ? (since.at ? Date.parse(since.at) : -Infinity) : -Infinity;
          const to = phase === 'stuck' ? stuckBefore : Infinity;
          await pages(
            source,
            [state],
            cursor,
            async (page) => {
              const ids = page.filter((r) => r.since >= from && r.since < to).map((r) => r.id);
              await f.add(await lookUp(source, ids, phase));
            },
            f,
          );
          break;
        }
        case 'incomplete': {
          const done = await jobsWithOutput(t.t.resolvePath(t.m.outputs.dir), t.m.outputs.summaryPattern);
          await pages(
            source,
            ['completed'],
            cursor,
            async (page) => {
              const ids = page.filter((r) => !done.has(r.id)).map((r) => r.id);
              await f.add(await lookUp(source, ids, 'incomplete'));
            },
            f,
          );
          break;
        }
        case 'gap': {
          const scan = await scanLogs(t.t.resolvePath(t.m.logs.dir), t.m.logs.pattern, () => heartbeat(cursor));
          Object.assign(logs, { files: scan.files, lines: scan.lines });
          // a job still queued or processing is not a gap (the stuck ones were found above)
          const ids = [...scan.unfinished, ...scan.dualWriteFailed].filter((id) => !f.seen.has(id));
          await idPages(source, ids, 'gap', cursor, f);
          break;
        }
      }
    }
  } catch (err) {
    await f.close();
    // a job that is not JSON (or any final error): nothing of this run is left behind; a retry resumes otherwise
    if (staging && err instanceof ApplicationFailure && err.nonRetryable) await rm(staging, { force: true });
    throw err;
  }
  await f.close();

  const planned: PlanEntry[] = f.list
    .filter((x) => !x.note)
    .map((x) => ({ id: x.id, kind: x.kind, from: x.from!, ...(x.name ? { name: x.name } : {}) }));
  const counts: Record<PlanKind, number> = { failed: 0, stuck: 0, incomplete: 0, gap: 0, requested: 0 };
  for (const e of planned) counts[e.kind] += 1;
  const noted = (n: Note) => {
    const ids = f.list.filter((x) => x.note === n).map((x) => x.id);
    return { count: ids.length, sample: ids.slice(0, 20) };
  };
  const file = input.dryRun
    ? { path: undefined, sha256: sha256(planText(planned)), total: planned.length }
    : await writePlanFile(t.workDir, planned);
  if (staging) await rm(staging, { force: true });
  return {
    ...file,
    counts,
    sample: planned.slice(0, 20),
    missing: noted('missing'),
    active: noted('active'),
    since,
    stuckBefore: new Date(stuckBefore).toISOString(),
    truncated: f.full && input.limit !== undefined,
    source: source.describe(),
    logs,
  };
}
