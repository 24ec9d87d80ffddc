import { DefaultLogger, Runtime, makeTelemetryFilterString } from '@temporalio/worker';

// Tests print SDK errors only; the worker's own logs go through pino at warn.
Runtime.install({
  logger: new DefaultLogger('ERROR'),
  telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }) } },
});
