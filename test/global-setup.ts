import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { repoRoot, startDevServer, type DevServer } from '../src/dev/temporal-server.js';
import { bundleWorkflows } from '../src/worker/worker.js';
import { freePort } from './support/ports.js';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    workflowBundlePath: string;
  }
}

let server: DevServer | undefined;

/** One real Temporal dev server and one workflow bundle for the whole suite. */
export async function setup(project: TestProject): Promise<void> {
  const dir = join(repoRoot, '.data', 'test');
  mkdirSync(dir, { recursive: true });
  const [port, code] = await Promise.all([freePort(), bundleWorkflows()]);
  server = await startDevServer({ port, logFile: join(dir, 'temporal.log') });
  const bundle = join(dir, 'workflow-bundle.js');
  writeFileSync(bundle, code);
  project.provide('temporalAddress', server.address);
  project.provide('workflowBundlePath', bundle);
}

export async function teardown(): Promise<void> {
  await server?.stop();
}
