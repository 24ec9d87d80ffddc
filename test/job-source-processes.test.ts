import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SPOOL_GROUP } from '../src/activities/migration/jobs/spool-batch.js';
import { replayTag } from '../src/activities/migration/jobs/spool-names.js';
import type { RequeueOutcome, RequeueRequest } from '../src/activities/migration/types.js';
import {
  jobProcessorCommand,
  jobProcessorFiles,
  writeProcessorConfig,
  type JobProcessorFiles,
} from '../src/demo/job-processor-environment.js';
import { freePort } from '../src/dev/ports.js';
import { repoRoot } from '../src/dev/temporal-server.js';
import { sigkill } from './support/child-worker.js';

/**
 * Two attempts of one requeue batch in processes of their own, on a spool the demo processor works meanwhile: the
 * first is held at a step of its first group (test/support/spool-attempt.ts) while the second runs the whole batch,
 * then goes on or is SIGKILLed. The processor's own log says each job was processed once, with its key.
 */

const N = 600;
const key = (id: string) => `wf/run/${id}`;
const ids = Array.from({ length: N }, (_, i) => `q${String(i).padStart(4, '0')}`);
const jobs: RequeueRequest[] = ids.map((id) => ({ id, from: 'failed', key: key(id) }));

const children: ChildProcess[] = [];
let files: JobProcessorFiles;
let jobsFile: string;
let processor: ChildProcess;

interface Attempt {
  child: ChildProcess;
  /** resolves with the step when the attempt is held there */
  held: Promise<string>;
  outcomes: Promise<RequeueOutcome[]>;
}

function attempt(hold = false): Attempt {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'test/support/spool-attempt.ts', files.root, jobsFile, ...(hold ? ['hold'] : [])],
    { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: child.stdout! });
  let onHeld!: (step: string) => void;
  const held = new Promise<string>((r) => (onHeld = r));
  const outcomes = new Promise<RequeueOutcome[]>((resolve, reject) => {
    lines.on('line', (line) => {
      if (line.startsWith('at ')) onHeld(line.split(' ')[1]!);
      if (line.startsWith('outcomes ')) resolve(JSON.parse(line.slice('outcomes '.length)) as RequeueOutcome[]);
    });
    child.once('exit', (code, signal) => reject(new Error(`attempt exited ${code ?? signal} ${stderr}`)));
  });
  outcomes.catch(() => {}); // a SIGKILLed attempt has none
  return { child, held, outcomes };
}

const count = (state: string) => readdirSync(join(files.root, 'jobs', state)).filter((n) => n.endsWith('.json')).length;

async function drained(): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (count('queue') === 0 && count('processing') === 0 && count('completed') === N) return;
    if (Date.now() > deadline)
      throw new Error(
        `not drained: queue ${count('queue')}, processing ${count('processing')}, completed ${count('completed')}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** the processor's log: `Processing job <id> … replay=<tag of the key>` lines per job */
function processedTimes(): Map<string, number> {
  const times = new Map<string, number>();
  for (const name of readdirSync(files.logDir))
    for (const line of readFileSync(join(files.logDir, name), 'utf8').split('\n')) {
      const m = /INFO Processing job (\S+) backend=\S+ replay=(\S+)$/.exec(line);
      if (m && m[2] === replayTag(key(m[1]!))) times.set(m[1]!, (times.get(m[1]!) ?? 0) + 1);
    }
  return times;
}

function expectProcessedOnce(): void {
  const times = processedTimes();
  expect(ids.filter((id) => times.get(id) !== 1)).toEqual([]);
  expect(count('failed')).toBe(0);
  expect(existsSync(join(files.root, 'jobs', '.replay'))).toBe(false);
}

describe('job source: spool, two attempts in processes of their own, the demo processor working the queue', () => {
  beforeEach(async () => {
    files = jobProcessorFiles(mkdtempSync(join(tmpdir(), 'job-attempts-')));
    writeProcessorConfig(files.ini, files.markerFile);
    mkdirSync(join(files.root, 'jobs', 'failed'), { recursive: true });
    for (const id of ids)
      writeFileSync(
        join(files.root, 'jobs', 'failed', `${id}.json`),
        JSON.stringify({ id, timestamp: '20260101_000000', n: id }),
      );
    jobsFile = join(files.dataDir, 'jobs.json');
    writeFileSync(jobsFile, JSON.stringify(jobs));
    const port = await freePort();
    const [cmd, ...args] = jobProcessorCommand(files, port, { pollMs: 10, workMs: 1, concurrency: 4 });
    processor = spawn(cmd!, args, { stdio: 'ignore' });
    children.push(processor);
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/health`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  afterEach(async () => {
    for (const c of children.splice(0)) await sigkill(c);
    rmSync(files.dataDir, { recursive: true, force: true });
  });

  // the first group: renamed by the held attempt, not yet made durable nor reported
  const firstGroup = (outcome: RequeueOutcome, rest: RequeueOutcome) =>
    jobs.map((_, i) => (i < SPOOL_GROUP ? outcome : rest));

  it('the first attempt is held after renaming its first group, the second runs the batch, the first is SIGKILLed: each job processed once', async () => {
    const first = attempt(true);
    expect(await first.held).toBe('renamed');
    const second = await attempt().outcomes;
    await sigkill(first.child);
    await drained();
    // the second found the first group tagged in some state (queued, being worked or done) and queued the rest
    expect(second).toEqual(firstGroup('already', 'requeued'));
    expectProcessedOnce();
  });

  it('the first attempt is held after renaming its first group, the second runs the batch, then the first goes on: each job processed once', async () => {
    const first = attempt(true);
    expect(await first.held).toBe('renamed');
    const second = await attempt().outcomes;
    first.child.stdin!.write('go\n');
    const outcomes = await first.outcomes;
    await drained();
    expect(second).toEqual(firstGroup('already', 'requeued'));
    expect(outcomes).toEqual(firstGroup('requeued', 'already'));
    expectProcessedOnce();
  });
});
