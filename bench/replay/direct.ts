import { execFileSync } from 'node:child_process';
import {
  closeSync,
  fdatasync,
  fstatSync,
  mkdirSync,
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
 * the goal's baseline): the key looked for in the three other states (a stat each), the source opened, its inode
 * taken and read; the keyed copy written to `.replay/`; the source taken into `.replay/` by a rename and its inode
 * checked; the copy renamed into `queue/`; the taken source removed. What the exactly-once protocol costs in system
 * calls alone, without fsync and without the workflow.
 */
export function checkedDirectRequeue(root: string, key: string): TimedLoop {
  const started = performance.now();
  const jobs = join(root, 'jobs');
  const staging = join(jobs, '.replay');
  mkdirSync(staging, { recursive: true });
  const names = failedNames(root);
  for (const name of names) {
    for (const state of ['queue', 'processing', 'completed'])
      if (statSync(join(jobs, state, name), { throwIfNoEntry: false })) throw new Error(`${name} in ${state}`);
    const source = join(jobs, 'failed', name);
    const fd = openSync(source, 'r');
    let text: string;
    let ino: number;
    try {
      ino = fstatSync(fd).ino;
      text = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
    const tmp = join(staging, `${name}.tmp`);
    const src = join(staging, `${name}.src`);
    writeFileSync(tmp, keyed(text, key), { flag: 'wx', mode: 0o644 });
    renameSync(source, src);
    if (statSync(src).ino !== ino) throw new Error(`${name}: another file was taken`);
    renameSync(tmp, join(jobs, 'queue', name));
    unlinkSync(src);
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
  const ids = failedNames(root).map((n) => n.slice(0, -'.json'.length));
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < ids.length) {
      const batch = ids.slice(next, next + pacing.batch);
      next += batch.length;
      await source.requeueMany(batch.map((id) => ({ id, from: 'failed' as const, key: `${key}/${id}` })));
    }
  };
  await Promise.all(Array.from({ length: pacing.concurrency }, lane));
  return { jobs: ids.length, ms: performance.now() - started };
}
