import { join } from 'node:path';
import { freePort } from '../../src/dev/ports.js';
import { startDevServer } from '../../src/dev/temporal-server.js';
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
