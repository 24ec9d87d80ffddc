import { readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SpoolJobSource } from '../../src/activities/migration/jobs/spool.js';

/**
 * The baseline: a direct loop over the failed jobs that requeues each one as the seed's script does (cp to the
 * queue, rm the source), carrying a key like the runbook: read, parse, write `queue/<id>.json` with `replay.key`,
 * remove the source. No workflow, no key check in other states, no fsync.
 */
export function directRequeue(root: string, key: string): { jobs: number; ms: number } {
  const started = performance.now();
  const failed = join(root, 'jobs', 'failed');
  const queue = join(root, 'jobs', 'queue');
  let jobs = 0;
  for (const name of readdirSync(failed).sort()) {
    if (!name.endsWith('.json') || name.startsWith('.')) continue;
    const source = join(failed, name);
    const job = JSON.parse(readFileSync(source, 'utf8')) as Record<string, unknown>;
    writeFileSync(join(queue, name), `${JSON.stringify({ ...job, replay: { key: `${key}/${job.id}` } })}\n`);
    unlinkSync(source);
    jobs += 1;
  }
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
): Promise<{ jobs: number; ms: number }> {
  const started = performance.now();
  const source = new SpoolJobSource(root);
  const ids = readdirSync(join(root, 'jobs', 'failed'))
    .filter((n) => n.endsWith('.json') && !n.startsWith('.'))
    .map((n) => n.slice(0, -'.json'.length))
    .sort();
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
