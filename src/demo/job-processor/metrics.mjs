// The demo job processor's Prometheus metrics (prom-client), names as docs/backend-migration.md lists them.
import client from 'prom-client';
import { BACKENDS } from './config.mjs';

export function createMetrics({ depth, config, faults, wedged }) {
  const registry = new client.Registry();
  const registers = [registry];
  const byBackend = (name, help) => new client.Counter({ name, help, labelNames: ['backend'], registers });
  const processed = byBackend('jobs_processed_total', 'jobs completed, by the backend they were routed to');
  const failed = byBackend('jobs_failed_total', 'jobs failed, by the backend they were routed to');
  const duration = new client.Histogram({
    name: 'job_duration_seconds',
    help: 'job processing time, by backend',
    labelNames: ['backend'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const dualWriteFailed = byBackend(
    'jobs_dual_write_failed_total',
    'dual-write copies that failed, by the backend written to',
  );
  const emptyOutputs = byBackend('job_outputs_empty_total', 'jobs whose backend returned nothing (an empty output)');
  new client.Gauge({
    name: 'jobs_queue_depth',
    help: 'jobs waiting in the queue',
    registers,
    async collect() {
      this.set(await depth());
    },
  });
  new client.Gauge({
    name: 'job_processor_config_info',
    help: 'the backend configuration in effect (1)',
    labelNames: ['primary', 'dual_write', 'cutover_percent'],
    registers,
    collect() {
      this.reset();
      const c = config();
      if (!c.problem)
        this.set({ primary: c.primary, dual_write: String(c.dualWrite), cutover_percent: String(c.cutoverPercent) }, 1);
    },
  });
  new client.Gauge({
    name: 'job_processor_config_valid',
    help: '1 when the backend configuration is valid',
    registers,
    collect() {
      this.set(config().problem ? 0 : 1);
    },
  });
  new client.Gauge({
    name: 'job_processor_fault_info',
    help: 'faults switched on (1), by backend and mode',
    labelNames: ['backend', 'mode'],
    registers,
    collect() {
      this.reset();
      for (const [backend, f] of Object.entries(faults())) this.set({ backend, mode: f.mode }, 1);
    },
  });
  new client.Gauge({
    name: 'job_processor_wedged',
    help: '1 after POST /wedge until restart',
    registers,
    collect() {
      this.set(wedged() ? 1 : 0);
    },
  });
  return {
    processed,
    failed,
    duration,
    dualWriteFailed,
    emptyOutputs,
    contentType: registry.contentType,
    text: () => registry.metrics(),
    /** every backend's series exists from the start (rates over a window need a first sample) */
    touch(backend) {
      if (!BACKENDS.includes(backend)) return;
      for (const c of [processed, failed, dualWriteFailed, emptyOutputs]) c.inc({ backend }, 0);
    },
  };
}
