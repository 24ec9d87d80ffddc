/**
 * Section 3 of `npm run bench` on its own: `npx tsx bench/dual-write-main.ts` runs the dual-write detection
 * bench (bench/dual-write.ts), prints its Markdown and rewrites its block of BENCHMARKS.md. It starts a Temporal
 * dev server only if the repair runs as a real workflow. Knobs: see bench/dual-write.ts.
 */
import { join } from 'node:path';
import { DefaultLogger, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { repoRoot } from '../src/dev/temporal-server.js';
import { killDualWriteBenchNow, runDualWriteBench, stopDualWriteBench, writeDualWriteSection } from './dual-write.js';

process.on('exit', killDualWriteBenchNow);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`bench: ${signal}, stopping`);
    void stopDualWriteBench().finally(() => process.exit(130));
  });
}

Runtime.install({
  logger: new DefaultLogger('WARN'),
  telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) } },
});

runDualWriteBench().then(
  (markdown) => {
    process.stdout.write(`${markdown}\n`);
    if (process.env.DW_BENCH_WRITE !== '0') writeDualWriteSection(join(repoRoot, 'BENCHMARKS.md'), markdown);
    process.exit(0);
  },
  (err: unknown) => {
    console.error(err);
    void stopDualWriteBench().finally(() => process.exit(1));
  },
);
