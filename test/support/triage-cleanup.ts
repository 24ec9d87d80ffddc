import { join } from 'node:path';
import type pg from 'pg';
import type { WorkflowHandle } from '@temporalio/client';
import { cleanupSection, seedCleanupDemo } from '../../src/demo/cleanup-demo.js';
import type { Harness, DemoTarget } from './harness.js';
import { startRunbook } from './sqlite.js';

let n = 0;

/** The seed's "Duplicate mappings detected" row: stop dual write → clean up → re-enable, on the demo service. */
export async function duplicateMappingsTarget(h: Harness, db: pg.Pool): Promise<{ t: DemoTarget; schema: string }> {
  const schema = `triage_own_${process.pid}_${n++}`;
  await seedCleanupDemo(db, schema);
  const t = await h.demoTarget({
    sections: {
      triage: {
        matrix: [
          {
            symptom: 'duplicate-mappings',
            urgency: 'medium',
            chain: [
              { runbook: 'feature-flag-rollback', target: 'web', input: { mode: 'disable-dual-write' } },
              { runbook: 'test-data-cleanup', target: 'cleanup' },
              { runbook: 'feature-flag-rollback', target: 'web', input: { mode: 'enable-dual-write' } },
            ],
          },
        ],
      },
    },
    targets: { cleanup: { cleanup: cleanupSection(schema, { workDir: join(h.root, 'cleanup', schema) }) } },
  });
  return { t, schema };
}

/** Starts triage for "duplicate-mappings" on `<env>/web`, measuring nothing. */
export const startDuplicateMappingsTriage = (h: Harness, t: DemoTarget): Promise<WorkflowHandle> =>
  startRunbook(h, 'triage', {
    environment: t.envName,
    target: 'web',
    symptoms: ['duplicate-mappings'],
    noMeasure: true,
  });

/** Write traffic until `until` settles: enable-dual-write's soak must see dual writes again. */
export async function withTraffic<T>(t: DemoTarget, until: Promise<T>): Promise<T> {
  let done = false;
  const settled = until.finally(() => (done = true));
  while (!done) await t.write(1).then(() => new Promise((r) => setTimeout(r, 200)));
  return settled;
}
