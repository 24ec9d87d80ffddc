import { DefaultLogger, Runtime, makeTelemetryFilterString } from '@temporalio/worker';

/** The bench's processes print the SDK's warnings and errors only (as test/support/quiet-runtime.ts, at warn). */
export function installQuietRuntime(): void {
  Runtime.install({
    logger: new DefaultLogger('WARN'),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) } },
  });
}
