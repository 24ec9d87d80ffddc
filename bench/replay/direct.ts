import { execFileSync } from 'node:child_process';
import {
  closeSync,
  fdatasync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SPOOL_GROUP } from '../../src/activities/migration/jobs/spool-batch.js';
import { JOB_STATES } from '../../src/activities/migration/jobs/errors.js';
import { spoolName, replayTag } from '../../src/activities/migration/jobs/spool-names.js';
import { SpoolJobSource } from '../../src/activities/migration/jobs/spool.js';
import { fsyncDir } from '../../src/activities/sqlite/forensics.js';

const fdatasyncAsync = promisify(fdatasync);

export interface TimedLoop {
  jobs: number;
  ms: number;
}

const failedNames = (root: string): string[] =>
  readdirSync(join(root, 'jobs', 'failed'))
    .filter((n) => n.endsWith('.json') && !n.startsWith('.'))
    .sort();

/** the job file's text with the replay key, as the runbook writes it */
const keyed = (text: string, key: string): string => {
  const job = JSON.parse(text) as Record<string, unknown>;
  return `${JSON.stringify({ ...job, replay: { key: `${key}/${String(job.id)}` } })}\n`;
};

/**
 * The baseline: a direct loop over the failed jobs that requeues each one as the seed's script does (cp to the
 * queue, rm the source), carrying a key like the runbook: read, parse, write `queue/<id>.json` with `replay.key`,
 * remove the source. No workflow, no key check in other states, no fsync.
 */
export function directRequeue(root: string, key: string): TimedLoop {
  const started = performance.now();
  const failed = join(root, 'jobs', 'failed');
  const queue = join(root, 'jobs', 'queue');
  let jobs = 0;
  for (const name of failedNames(root)) {
    const source = join(failed, name);
    writeFileSync(join(queue, name), keyed(readFileSync(source, 'utf8'), key));
    unlinkSync(source);
    jobs += 1;
  }
  return { jobs, ms: performance.now() - started };
}

/**
 * The direct loop made durable as cheaply as we know how, for comparison (not the goal's baseline): in groups of
 * SPOOL_GROUP, the keyed copies written to `queue/<id>.json` and fdatasynced together, `queue/` fsynced, then the
 * sources removed and `failed/` fsynced: a power loss never leaves a job whose source is gone and whose copy is
 * empty. Still no key check and nothing that makes two runs of it safe.
 */
export async function durableDirectRequeue(root: string, key: string): Promise<TimedLoop> {
  const started = performance.now();
  const failed = join(root, 'jobs', 'failed');
  const queue = join(root, 'jobs', 'queue');
  const names = failedNames(root);
  for (let i = 0; i < names.length; i += SPOOL_GROUP) {
    const group = names.slice(i, i + SPOOL_GROUP);
    const fds = group.map((name) => {
      const fd = openSync(join(queue, name), 'w', 0o644);
      writeSync(fd, keyed(readFileSync(join(failed, name), 'utf8'), key));
      return fd;
    });
    try {
      await Promise.all(fds.map((fd) => fdatasyncAsync(fd)));
    } finally {
      for (const fd of fds) closeSync(fd);
    }
    await fsyncDir(queue);
    for (const name of group) unlinkSync(join(failed, name));
    await fsyncDir(failed);
  }
  return { jobs: names.length, ms: performance.now() - started };
}

/**
 * The direct loop doing the runbook's file operations per job without making anything durable, for comparison (not
 * the goal's baseline): the tagged name looked for in the four states (a stat each), then one rename of the job's
 * file from `failed/` to `queue/<id>~<tag>.json`. What the exactly-once protocol costs in system calls alone, without
 * the per-group directory fsyncs and without the workflow: the seed's `mv` plus the key check.
 */
export function checkedDirectRequeue(root: string, key: string): TimedLoop {
  const started = performance.now();
  const jobs = join(root, 'jobs');
  const names = failedNames(root);
  for (const name of names) {
    const id = name.slice(0, -'.json'.length);
    const tagged = spoolName(id, replayTag(`${key}/${id}`));
    for (const state of JOB_STATES)
      if (statSync(join(jobs, state, tagged), { throwIfNoEntry: false })) throw new Error(`${tagged} in ${state}`);
    renameSync(join(jobs, 'failed', name), join(jobs, 'queue', tagged));
  }
  return { jobs: names.length, ms: performance.now() - started };
}

/** The seed's own script (scripts/replay_jobs.sh's failed-jobs loop, without its `sleep 2`): cp and rm per job. */
export function seedScriptRequeue(root: string): TimedLoop {
  const jobs = failedNames(root).length;
  const started = performance.now();
  execFileSync(
    'bash',
    [
      '-c',
      'for job_file in jobs/failed/*.json; do if [ -f "$job_file" ]; then cp "$job_file" jobs/queue/; rm "$job_file"; fi; done',
    ],
    { cwd: root, stdio: 'ignore' },
  );
  return { jobs, ms: performance.now() - started };
}

/**
 * The runbook's job source alone, as the batch activities call it (`requeueMany` on batches of `batch` jobs,
 * `concurrency` batches at once), without a workflow around it.
 */
export async function sourceRequeue(
  root: string,
  key: string,
  pacing: { batch: number; concurrency: number },
): Promise<TimedLoop> {
  const started = performance.now();
  const source = new SpoolJobSource(root);
  const names = failedNames(root);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < names.length) {
      const batch = names.slice(next, next + pacing.batch);
      next += batch.length;
      await source.requeueMany(
        batch.map((name) => {
          const id = name.slice(0, -'.json'.length);
          return { id, from: 'failed' as const, key: `${key}/${id}`, name };
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: pacing.concurrency }, lane));
  return { jobs: names.length, ms: performance.now() - started };
}
