import { cpSync, existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { sha256 } from '../../src/activities/digest.js';
import type { Harness } from './harness.js';
import { jobTarget, type JobTargetOptions, type JobTestTarget } from './migration.js';
import { startRunbook } from './sqlite.js';

// A job processor whose outputs are partly corrupt, for the output-recovery tests and the dry-run case.

export interface CorruptOutputs {
  t: JobTestTarget;
  /** every run directory by name, as written */
  runs: string[];
  /** corrupt runs: name → kind */
  corrupt: Record<string, 'empty' | 'truncated' | 'digest' | 'unparsable'>;
  /** corrupt runs with a verified backup copy */
  restorable: string[];
  /** the jobs of the corrupt runs without one */
  replayJobs: string[];
}

const summaryOf = (dir: string) => readdirSync(dir).find((n) => n.startsWith('optimization_summary_'))!;
const jobOf = (dir: string) => summaryOf(dir).slice('optimization_summary_'.length, -'.txt'.length);

/**
 * 40 jobs worked to completed; a backup of the first 30 runs (taken before the last 10 were written); then 7
 * runs damaged: 3 with a good backup (empty, truncated, wrong digest), 1 whose backup is damaged as well
 * (unparsable), and 3 written after the backup (empty, truncated, wrong digest).
 */
export async function corruptOutputs(h: Harness, o: JobTargetOptions = {}): Promise<CorruptOutputs> {
  const t = await jobTarget(h, o);
  await t.seedJobs(40, 'queue');
  await t.waitForDrain();
  const runs = t.outputs().map((r) => r.run);
  for (const run of runs.slice(0, 30)) cpSync(join(t.outputDir, run), join(t.backupDir, run), { recursive: true });
  const damage = {
    empty: (dir: string) => truncateSync(join(dir, summaryOf(dir)), 0),
    truncated: (dir: string) => {
      const file = join(dir, summaryOf(dir));
      writeFileSync(file, readFileSync(file, 'utf8').replace(/replay: -\nEND\n$/, 'repl'));
    },
    digest: (dir: string) => {
      const file = join(dir, summaryOf(dir));
      writeFileSync(file, readFileSync(file, 'utf8').replace(/result: [0-9a-f]{8}/, 'result: 00000000'));
    },
    unparsable: (dir: string) => {
      const file = join(dir, summaryOf(dir));
      writeFileSync(file, `\u0000\u0001garbage\nEND\n`);
    },
  };
  const corrupt: CorruptOutputs['corrupt'] = {
    [runs[2]!]: 'empty',
    [runs[5]!]: 'truncated',
    [runs[8]!]: 'digest',
    [runs[12]!]: 'unparsable',
    [runs[32]!]: 'empty',
    [runs[35]!]: 'truncated',
    [runs[38]!]: 'digest',
  };
  for (const [run, kind] of Object.entries(corrupt)) damage[kind](join(t.outputDir, run));
  damage.unparsable(join(t.backupDir, runs[12]!));
  const restorable = [runs[2]!, runs[5]!, runs[8]!];
  const replayJobs = [runs[12]!, runs[32]!, runs[35]!, runs[38]!].map((r) => jobOf(join(t.outputDir, r))).sort();
  return { t, runs, corrupt, restorable, replayJobs };
}

/** Every file below `dir` (relative path → sha256); {} when it does not exist. */
export function filesOf(dir: string): Record<string, string> {
  if (!existsSync(dir)) return {};
  const out: Record<string, string> = {};
  for (const entry of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, entry);
    if (statSync(path).isFile()) out[relative(dir, path)] = sha256(readFileSync(path));
  }
  return out;
}

/** What a recovery may change: outputs, quarantine, backup, spool, work dir, INI. */
export function snapshot(t: JobTestTarget) {
  return {
    outputs: filesOf(t.outputDir),
    quarantine: filesOf(t.quarantineDir),
    backup: filesOf(t.backupDir),
    jobs: filesOf(join(t.root, 'jobs')),
    work: filesOf(t.workDir),
    ini: sha256(t.iniBytes()),
  };
}

let counter = 0;

export const startRecovery = (
  h: Harness,
  t: JobTestTarget,
  input: Record<string, unknown> = {},
): Promise<WorkflowHandle> =>
  startRunbook(
    h,
    'output-recovery',
    { environment: t.envName, target: 'jobs', ...input },
    `output-recovery-${h.taskQueue}-${counter++}`,
  );
