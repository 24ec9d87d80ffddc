/**
 * The job source alone in a process of its own with the worker's libuv thread pool (`npm run worker` sets
 * UV_THREADPOOL_SIZE=64; a pool's size is fixed when a process starts): `source-child.ts <root> <key> <batch>
 * <concurrency>` requeues every failed job of the spool and prints `{"jobs":…,"ms":…}`.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sourceRequeue, type TimedLoop } from './direct.js';

/** Runs this file as a child process with the worker's thread pool. */
export function sourceRequeueInWorkerPool(
  root: string,
  key: string,
  pacing: { batch: number; concurrency: number },
): TimedLoop {
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), root, key, String(pacing.batch), String(pacing.concurrency)],
    { env: { ...process.env, UV_THREADPOOL_SIZE: '64' }, encoding: 'utf8' },
  );
  return JSON.parse(out.trim().split('\n').at(-1)!) as TimedLoop;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [root, key, batch, concurrency] = process.argv.slice(2);
  const r = await sourceRequeue(root!, key!, { batch: Number(batch), concurrency: Number(concurrency) });
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
