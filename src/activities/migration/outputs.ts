import { cp, readdir, readFile, rename, rm, rmdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Logger } from 'pino';
import { ErrorType } from '../../shared/constants.js';
import type { MigrationTargetConfig } from '../../shared/schemas.js';
import { coverDigest, type ChildCover } from '../cover.js';
import { checkedDigest, sha256 } from '../digest.js';
import { loadTarget, requireSection, withEnvironmentErrors } from '../environment.js';
import { writeFileAtomically } from '../files.js';
import { backupProblem, readRun, summaryMatcher, type CorruptKind } from './outputs/judge.js';

// Corruption recovery of a job processor's outputs (seed "Data Corruption Recovery"): detect corrupt run
// directories, quarantine them (never delete), restore verified backup copies, and say which jobs need a replay.

export interface OutputActivityDeps {
  environmentsDir: string;
  log: Logger;
}

interface TargetRef {
  environment: string;
  target: string;
}

/** One corrupt run directory of the plan. */
export interface RecoveryEntry {
  run: string;
  kind: CorruptKind;
  /** the file found wrong first, and how */
  file: string;
  detail: string;
  /** the jobs whose summaries the run holds */
  jobs: string[];
  /** every file of the run as planned → sha256 (quarantine refuses a run that changed since) */
  digests: Record<string, string>;
  /** restore: a verified backup copy exists; replay: its jobs run again; quarantine-only: no job id to replay */
  action: 'restore' | 'replay' | 'quarantine-only';
  /** why there is no restorable backup copy */
  backup?: string;
}

export interface RecoveryPlanFile {
  path: string;
  sha256: string;
  total: number;
}

export interface OutputRecoveryPlan {
  /** absent in a dry run (it writes nothing); the digest is there either way */
  file?: RecoveryPlanFile;
  sha256: string;
  total: number;
  counts: Record<CorruptKind, number>;
  restorable: number;
  /** the jobs of the runs no backup restores, in id order */
  replayJobs: string[];
  /** sha256 of those ids, one per line */
  replayJobsSha256: string;
  quarantineOnly: number;
  /** run directories read; without summaries (a run being written, or cut short) */
  scanned: number;
  incomplete: number;
  sample: Array<Omit<RecoveryEntry, 'digests'>>;
  outputsDir: string;
  quarantineDir: string;
  backupDir?: string;
  /** the child replay the plan covers (its exact input's digest), when there are jobs to replay */
  cover?: ChildCover;
}

const failure = (type: string, message: string) => ApplicationFailure.nonRetryable(message, type);
const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );
const SAFE_RUN = /^[^/\\\0]+$/;
/** a run without manifest.json whose summaries changed this recently may still be being written */
const IN_FLIGHT_MS = 60_000;

interface Dirs {
  m: MigrationTargetConfig;
  outputs: string;
  quarantine: string;
  backup?: string;
  workDir: string;
}

async function dirsOf(deps: OutputActivityDeps, ref: TargetRef): Promise<Dirs> {
  return withEnvironmentErrors(async () => {
    const t = await loadTarget(deps.environmentsDir, ref.environment, ref.target);
    const m = requireSection(t, 'migration');
    return {
      m,
      outputs: t.resolvePath(m.outputs.dir),
      quarantine: t.resolvePath(m.outputs.quarantineDir),
      backup: m.outputs.backupDir ? t.resolvePath(m.outputs.backupDir) : undefined,
      workDir: t.resolvePath(m.workDir),
    };
  });
}

const planText = (entries: RecoveryEntry[]) => entries.map((e) => `${JSON.stringify(e)}\n`).join('');
const planPath = (workDir: string, digest: string) => join(workDir, 'output-recovery', `${digest}.jsonl`);
/** where this plan's runs are quarantined: one directory per plan, beside its record */
const quarantineOf = (d: Dirs, digest: string) => join(d.quarantine, `recovery-${digest.slice(0, 16)}`);

/** The plan's entries, checked against the digest history holds. */
async function readPlan(d: Dirs, digest: string): Promise<RecoveryEntry[]> {
  const path = planPath(d.workDir, checkedDigest(digest, 'output recovery plan'));
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw ApplicationFailure.retryable(
        `output recovery plan ${path} is not on this worker's host`,
        ErrorType.WorkFileMissing,
      );
    throw err;
  }
  if (sha256(text) !== digest)
    throw failure(ErrorType.EvidenceMismatch, `output recovery plan ${path} changed since it was approved`);
  const entries = text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as RecoveryEntry);
  for (const e of entries)
    if (!SAFE_RUN.test(e.run) || e.run === '.' || e.run === '..')
      throw failure(ErrorType.EvidenceMismatch, `output recovery plan names an unsafe run "${e.run}"`);
  return entries;
}

const heartbeat = (details?: unknown) => {
  try {
    Context.current().heartbeat(details);
  } catch {
    // outside an activity (unit use)
  }
};

const digestsEqual = (a: Record<string, string>, b: Record<string, string>) =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v);

export const createOutputActivities = (deps: OutputActivityDeps) => ({
  /**
   * Reads every run directory of outputs.dir (written since `since`, when given): empty, truncated (no END),
   * unparsable, or disagreeing with its manifest.json. For each bad run: restore when outputs.backupDir holds a
   * copy that verifies against its own manifest, else replay its jobs. Writes the list as
   * `<workDir>/output-recovery/<sha256>.jsonl` (not in a dry run). Read-only otherwise; safe to run twice.
   */
  async detectCorruptOutputs(
    input: TargetRef & { since?: string; dryRun: boolean; replayChild?: { workflowType: string; input: object } },
  ): Promise<OutputRecoveryPlan> {
    const d = await dirsOf(deps, input);
    const isSummary = summaryMatcher(d.m.outputs.summaryPattern);
    const since = input.since ? Date.parse(input.since) : undefined;
    let names: string[] = [];
    try {
      names = (await readdir(d.outputs, { withFileTypes: true }))
        .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
        .map((e) => e.name)
        .sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const entries: RecoveryEntry[] = [];
    let incomplete = 0;
    let scanned = 0;
    for (const run of names) {
      if (scanned++ % 200 === 0) heartbeat({ scanned });
      let files;
      try {
        files = await readRun(join(d.outputs, run), isSummary);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // moved away meanwhile
        throw err;
      }
      // a run without summaries, or one still being written (no manifest yet, touched within the last minute),
      // is not judged: the processor may be writing it right now
      const writing = !files.digests['manifest.json'] && Date.now() - files.mtimeMs < IN_FLIGHT_MS;
      if (Object.keys(files.summaries).length === 0 || writing) {
        incomplete++;
        continue;
      }
      if (since !== undefined && files.mtimeMs < since) continue;
      if (!files.problem) continue;
      const jobs = [...new Set(Object.values(files.summaries).filter((j): j is string => j !== undefined))].sort();
      const backup = d.backup ? await backupProblem(join(d.backup, run), isSummary) : 'no outputs.backupDir';
      entries.push({
        run,
        kind: files.problem.kind,
        file: files.problem.file,
        detail: files.problem.detail,
        jobs,
        digests: files.digests,
        action: backup === undefined ? 'restore' : jobs.length ? 'replay' : 'quarantine-only',
        ...(backup !== undefined && { backup }),
      });
    }
    const text = planText(entries);
    const digest = sha256(text);
    const file = input.dryRun
      ? undefined
      : { path: planPath(d.workDir, digest), sha256: digest, total: entries.length };
    if (file) await writeFileAtomically(file.path, text);
    const counts = { empty: 0, truncated: 0, unparsable: 0, digest: 0 } as Record<CorruptKind, number>;
    for (const e of entries) counts[e.kind]++;
    const replayJobs = [...new Set(entries.filter((e) => e.action === 'replay').flatMap((e) => e.jobs))].sort();
    const child = input.replayChild;
    return {
      ...(file && { file }),
      sha256: digest,
      total: entries.length,
      counts,
      restorable: entries.filter((e) => e.action === 'restore').length,
      replayJobs,
      replayJobsSha256: sha256(replayJobs.join('\n')),
      quarantineOnly: entries.filter((e) => e.action === 'quarantine-only').length,
      scanned: names.length,
      incomplete,
      sample: entries.slice(0, 10).map(({ digests: _, ...e }) => e),
      outputsDir: d.outputs,
      quarantineDir: quarantineOf(d, digest),
      ...(d.backup && { backupDir: d.backup }),
      ...(child &&
        replayJobs.length > 0 && {
          cover: {
            workflowType: child.workflowType,
            digest: coverDigest(child.workflowType, { ...child.input, jobs: replayJobs }),
          },
        }),
    };
  },

  /**
   * Moves each planned run directory into `<quarantineDir>/recovery-<plan>/` (never deletes) and writes a record
   * there. Every run is checked against the plan first (PlanStale before anything moves when one changed); a run
   * already in quarantine counts as moved, so a retry resumes.
   */
  async quarantineOutputs(
    input: TargetRef & { plan: string; workflowId: string },
  ): Promise<{ moved: number; already: number; dir: string }> {
    const d = await dirsOf(deps, input);
    const entries = await readPlan(d, input.plan);
    const dir = quarantineOf(d, input.plan);
    const todo: RecoveryEntry[] = [];
    let already = 0;
    for (const [i, e] of entries.entries()) {
      if (i % 200 === 0) heartbeat({ checked: i });
      const from = join(d.outputs, e.run);
      if (!(await exists(from))) {
        if (await exists(join(dir, e.run))) {
          already++;
          continue;
        }
        throw failure(ErrorType.PlanStale, `output run ${e.run} is gone from ${d.outputs} since the plan`);
      }
      const now = await readRun(from, summaryMatcher(d.m.outputs.summaryPattern));
      if (!digestsEqual(now.digests, e.digests))
        throw failure(ErrorType.PlanStale, `output run ${e.run} changed since the plan was approved`);
      todo.push(e);
    }
    await writeFileAtomically(
      join(dir, 'quarantine.json'),
      `${JSON.stringify({ plan: input.plan, workflowId: input.workflowId, outputsDir: d.outputs, runs: entries.map(({ run, kind, file, detail, jobs }) => ({ run, kind, file, detail, jobs })) }, null, 2)}\n`,
    );
    for (const [i, e] of todo.entries()) {
      await rename(join(d.outputs, e.run), join(dir, e.run));
      heartbeat({ moved: i + 1 });
    }
    deps.log.info({ target: `${input.environment}/${input.target}`, moved: todo.length, dir }, 'outputs quarantined');
    return { moved: todo.length, already, dir };
  },

  /** Undo of the quarantine: each run still in quarantine (and not back in outputs) moves back, byte-identical. */
  async releaseQuarantine(input: TargetRef & { plan: string }): Promise<{ movedBack: number }> {
    const d = await dirsOf(deps, input);
    const entries = await readPlan(d, input.plan);
    const dir = quarantineOf(d, input.plan);
    let movedBack = 0;
    for (const e of entries) {
      const at = join(dir, e.run);
      if (!(await exists(at)) || (await exists(join(d.outputs, e.run)))) continue;
      await rename(at, join(d.outputs, e.run));
      movedBack++;
    }
    await rm(join(dir, 'quarantine.json'), { force: true });
    await rmdir(dir).catch(() => undefined); // only when empty
    return { movedBack };
  },

  /**
   * Copies each restorable run from the backup (into a hidden directory beside it, verified against the backup's
   * manifest again, then renamed into place). A run already restored (matching the backup) counts as such.
   */
  async restoreOutputs(input: TargetRef & { plan: string }): Promise<{ restored: number; already: number }> {
    const d = await dirsOf(deps, input);
    const isSummary = summaryMatcher(d.m.outputs.summaryPattern);
    const entries = (await readPlan(d, input.plan)).filter((e) => e.action === 'restore');
    let restored = 0;
    let already = 0;
    for (const e of entries) {
      if (!d.backup) throw failure(ErrorType.PlanStale, 'outputs.backupDir is no longer configured');
      const source = join(d.backup, e.run);
      const why = await backupProblem(source, isSummary);
      if (why) throw failure(ErrorType.BackupInvalid, `backup of ${e.run} no longer verifies: ${why}`);
      const backupDigests = (await readRun(source, isSummary)).digests;
      const to = join(d.outputs, e.run);
      if (await exists(to)) {
        if (digestsEqual((await readRun(to, isSummary)).digests, backupDigests)) {
          already++;
          continue;
        }
        throw failure(ErrorType.PlanStale, `${to} exists and is not the backup copy`);
      }
      const staging = join(d.outputs, `.restore-${basename(e.run)}`);
      await rm(staging, { recursive: true, force: true });
      await cp(source, staging, { recursive: true, preserveTimestamps: true });
      const copied = await readRun(staging, isSummary);
      if (!digestsEqual(copied.digests, backupDigests) || (await backupProblem(staging, isSummary)))
        throw ApplicationFailure.retryable(
          `the copy of ${e.run} does not match its backup`,
          ErrorType.VerificationFailed,
        );
      await rename(staging, to);
      restored++;
      heartbeat({ restored });
    }
    return { restored, already };
  },

  /** Undo of the restore: removes each restored run that is still exactly the backup copy (the backup keeps it). */
  async removeRestoredOutputs(input: TargetRef & { plan: string }): Promise<{ removed: number }> {
    const d = await dirsOf(deps, input);
    const isSummary = summaryMatcher(d.m.outputs.summaryPattern);
    let removed = 0;
    for (const e of (await readPlan(d, input.plan)).filter((x) => x.action === 'restore')) {
      await rm(join(d.outputs, `.restore-${basename(e.run)}`), { recursive: true, force: true });
      const at = join(d.outputs, e.run);
      if (!d.backup || !(await exists(at))) continue;
      const mine = (await readRun(at, isSummary)).digests;
      const backup = await readRun(join(d.backup, e.run), isSummary).catch(() => undefined);
      if (backup && digestsEqual(mine, backup.digests)) {
        await rm(at, { recursive: true });
        removed++;
      }
    }
    return { removed };
  },

  /**
   * After the recovery: every restored run is sound, and every replayed job has a sound summary in outputs.dir.
   * VerificationFailed names what is missing.
   */
  async verifyRecoveredOutputs(
    input: TargetRef & { plan: string; replayed: boolean },
  ): Promise<{ restoredSound: number; replayedWithOutput: number }> {
    const d = await dirsOf(deps, input);
    const isSummary = summaryMatcher(d.m.outputs.summaryPattern);
    const entries = await readPlan(d, input.plan);
    const problems: string[] = [];
    let restoredSound = 0;
    for (const e of entries.filter((x) => x.action === 'restore')) {
      const run = await readRun(join(d.outputs, e.run), isSummary).catch(() => undefined);
      if (run && !run.problem) restoredSound++;
      else problems.push(`restored ${e.run}: ${run?.problem?.detail ?? 'missing'}`);
    }
    const waiting = new Set(input.replayed ? entries.filter((x) => x.action === 'replay').flatMap((x) => x.jobs) : []);
    const wanted = waiting.size;
    if (waiting.size > 0) {
      const runs = (await readdir(d.outputs, { withFileTypes: true })).filter(
        (x) => x.isDirectory() && !x.name.startsWith('.'),
      );
      for (const [i, r] of runs.entries()) {
        if (i % 200 === 0) heartbeat({ verified: i });
        const run = await readRun(join(d.outputs, r.name), isSummary).catch(() => undefined);
        if (!run || run.problem) continue;
        for (const job of Object.values(run.summaries)) if (job) waiting.delete(job);
      }
    }
    const missing = [...waiting].sort();
    if (missing.length)
      problems.push(
        `no sound output for replayed jobs ${missing.slice(0, 20).join(', ')}${missing.length > 20 ? ', …' : ''}`,
      );
    if (problems.length) throw failure(ErrorType.VerificationFailed, problems.join('; '));
    return { restoredSound, replayedWithOutput: wanted };
  },
});

export type OutputActivities = ReturnType<typeof createOutputActivities>;
