// One attempt of a requeue batch in a process of its own (test/job-source-processes.test.ts):
//   node --import tsx test/support/spool-attempt.ts <spool root> <jobs JSON file> [hold]
// requeueMany of the file's jobs on the spool; with `hold`, after its first group's renames (before they are made
// durable and reported) it prints `at renamed <n>` and waits for a line on stdin (or for its SIGKILL). Its outcomes
// are its last line: `outcomes <JSON>`.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { SpoolJobSource } from '../../src/activities/migration/jobs/spool.js';
import type { SpoolHook } from '../../src/activities/migration/jobs/spool-batch.js';
import type { RequeueRequest } from '../../src/activities/migration/types.js';

const [root, jobsFile, hold] = process.argv.slice(2);
const lines = createInterface({ input: process.stdin });
let paused = false;
const hook: SpoolHook = async (ids) => {
  if (hold !== 'hold' || paused || ids.length === 0) return;
  paused = true;
  console.log(`at renamed ${ids.length}`);
  await new Promise((resolve) => lines.once('line', resolve));
};
const jobs = JSON.parse(readFileSync(jobsFile!, 'utf8')) as RequeueRequest[];
const outcomes = await new SpoolJobSource(root!, { hook }).requeueMany(jobs);
console.log(`outcomes ${JSON.stringify(outcomes)}`);
lines.close();
