// One attempt of a requeue batch in a process of its own (test/job-source-attempts.test.ts):
//   node --import tsx test/support/spool-attempt.ts <spool root> <jobs JSON file> [<step to pause at>]
// requeueMany of the file's jobs on the spool; at the first group that reaches the step it prints `at <step> <n>` and
// waits for a line on stdin (or for its SIGKILL). Its outcomes are its last line: `outcomes <JSON>`.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { SpoolJobSource } from '../../src/activities/migration/jobs/spool.js';
import type { SpoolHook } from '../../src/activities/migration/jobs/spool-staging.js';
import type { RequeueRequest } from '../../src/activities/migration/types.js';

const [root, jobsFile, pauseAt] = process.argv.slice(2);
const lines = createInterface({ input: process.stdin });
let paused = false;
const hook: SpoolHook = async (step, ids) => {
  if (step !== pauseAt || paused || ids.length === 0) return;
  paused = true;
  console.log(`at ${step} ${ids.length}`);
  await new Promise((resolve) => lines.once('line', resolve));
};
const jobs = JSON.parse(readFileSync(jobsFile!, 'utf8')) as RequeueRequest[];
const outcomes = await new SpoolJobSource(root!, { hook }).requeueMany(jobs);
console.log(`outcomes ${JSON.stringify(outcomes)}`);
lines.close();
