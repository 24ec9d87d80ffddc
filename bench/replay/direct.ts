import { readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

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
