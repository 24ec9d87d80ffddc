import { cpSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { serviceFromConfig } from '../activities/adapters/index.js';
import type { ServiceAdapter } from '../activities/adapters/types.js';
import { loadTarget, requireSection } from '../activities/environment.js';
import type { JobState } from '../activities/migration/types.js';
import { writeProcessorConfig } from './job-processor-environment.js';
import { writeSpoolJobs } from './jobs-seed.js';

const ids = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(5, '0')}`);

/**
 * `npm start`'s job processor (environments/demo.yaml, target `jobs`, port 8791). The first time: the INI file in
 * phase primary-only, 300 jobs worked to completed (outputs in .data/demo/jobs/output, copied to output-backup),
 * then 12 failed and 5 stuck jobs (in processing for two hours) for job-replay to find. Later starts reuse it all.
 */
export async function startJobsDemo(
  environmentsDir: string,
): Promise<{ service: ServiceAdapter; seeded: boolean; counts: Record<JobState, number> }> {
  const t = await loadTarget(environmentsDir, 'demo', 'jobs');
  const m = requireSection(t, 'migration');
  const root = t.resolvePath(m.jobs.type === 'spool' ? m.jobs.root : '.data/demo/jobs');
  const ini = t.resolvePath(m.config.type === 'ini' ? m.config.path : 'production_config.ini');
  writeProcessorConfig(ini, t.resolvePath(m.replay.markerFile ?? join(root, 'migration_start.timestamp')));
  const seeded = !existsSync(join(root, 'jobs'));
  if (seeded) writeSpoolJobs(root, ids('demo', 300), 'queue', { payload: { portfolio: 'demo' } });
  const service = serviceFromConfig(m.services.processor!, t.resolvePath);
  await service.stop();
  await service.start();
  const count = (state: JobState) => {
    try {
      return readdirSync(join(root, 'jobs', state)).filter((n) => n.endsWith('.json') && !n.startsWith('.')).length;
    } catch {
      return 0;
    }
  };
  if (seeded) {
    for (let i = 0; count('queue') > 0 || count('processing') > 0; i++) {
      if (i > 600) throw new Error(`the demo job processor did not work its ${count('queue')} queued jobs`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const hours = (h: number) => new Date(Date.now() - h * 3600_000);
    writeSpoolJobs(root, ids('failed', 12), 'failed', { at: hours(1), payload: { portfolio: 'demo' } });
    writeSpoolJobs(root, ids('stuck', 5), 'processing', { at: hours(2), payload: { portfolio: 'demo' } });
    if (m.outputs.backupDir)
      cpSync(t.resolvePath(m.outputs.dir), t.resolvePath(m.outputs.backupDir), { recursive: true });
  }
  const counts = Object.fromEntries(
    (['queue', 'processing', 'failed', 'completed'] as const).map((s) => [s, count(s)]),
  ) as Record<JobState, number>;
  return { service, seeded, counts };
}
