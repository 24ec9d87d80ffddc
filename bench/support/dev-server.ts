import { join } from 'node:path';
import { pino } from 'pino';
import { freePort } from '../../src/dev/ports.js';
import { startDevServer } from '../../src/dev/temporal-server.js';
import { Harness } from '../../test/support/harness.js';
import type { Resources } from './resources.js';

/** The caller's dev server (bench/run.ts's), or one of the section's own (log in `root`), stopped with `resources`. */
export async function devServerAddress(
  address: string | undefined,
  root: string,
  resources: Resources,
): Promise<string> {
  if (address) return address;
  const server = await startDevServer({ port: await freePort(), logFile: join(root, 'temporal.log') });
  resources.add(
    () => server.stop(),
    () => server.process.kill('SIGKILL'),
  );
  return server.address;
}

/** A test Harness on that server with this bundle (no Postgres), closed with `resources`; its logs go to stderr. */
export async function benchHarness(
  address: string,
  bundlePath: string,
  resources: Resources,
  options: { worker?: boolean } = {},
): Promise<Harness> {
  const h = new Harness({
    temporalAddress: address,
    workflowBundlePath: bundlePath,
    databaseUrl: '',
    log: pino({ level: 'warn' }, pino.destination(2)),
  });
  resources.add(() => h.close());
  return h.start(options);
}
