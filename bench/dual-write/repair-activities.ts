/**
 * The repair's activities themselves (planRepair, snapshotTargets, executeRepair: the code the worker runs), in
 * a MockActivityEnvironment, without a Temporal server: DW_BENCH_REPAIR=activities, or auto when the default
 * detection is too slow for the workflow. Detection and the final full check are diffStores with its defaults (as
 * detectDrift and verifyRepair), the diff written in the file format detectDrift writes.
 */
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createDualWriteActivities, type FileRef } from '../../src/activities/dual-write/index.js';
import { sha256 } from '../../src/activities/digest.js';
import { diffStores } from '../../src/activities/stores/diff.js';
import { StoreFactory } from '../../src/activities/stores/index.js';
import { differences } from '../../test/support/dual-write.js';
import { fmtBytes, fmtInt, timed } from './format.js';
import type { RepairResult } from './repair.js';
import type { CaseStores } from './seed.js';
import { DW_REPAIR_BATCH, DW_REPAIR_PARALLELISM } from './settings.js';
import { withSides } from './sides.js';
import type { DualWriteWorld } from './world.js';

export async function repairByActivities(world: DualWriteWorld, c: CaseStores, why: string): Promise<RepairResult> {
  const stores = new StoreFactory();
  const acts = createDualWriteActivities({
    environmentsDir: world.h.environmentsDir,
    stores,
    log: pino({ level: 'warn' }, pino.destination(2)),
  });
  const mock = new MockActivityEnvironment();
  const run = <A, R>(fn: (arg: A) => Promise<R>, arg: A): Promise<R> =>
    mock.run<[A], R, (arg: A) => Promise<R>>(fn, arg);
  const phases: RepairResult['phases'] = [];
  const ref = { environment: c.environment, target: 'objects', runKey: `bench-${Date.now()}` };
  const started = performance.now();
  try {
    return await withSides(world.pgUrl, c, async (a, b) => {
      const detect = await timed(async () => {
        const path = join(c.workDir, ref.runKey, 'detect-diff.jsonl');
        mkdirSync(dirname(path), { recursive: true });
        const out = createWriteStream(path);
        let lines = 0;
        for await (const entry of diffStores(a, b, {}, {})) {
          if (!out.write(`${JSON.stringify(entry)}\n`)) await once(out, 'drain');
          lines++;
        }
        out.end();
        await once(out, 'finish');
        return { path, sha256: sha256(readFileSync(path)), lines };
      });
      phases.push({
        name: 'detect (diffStores defaults → diff file)',
        ms: detect.ms,
        note: `${fmtInt(detect.value.lines)} differences`,
      });
      const diff: FileRef = { path: detect.value.path, sha256: detect.value.sha256 };
      const plan = await timed(() => run(acts.planRepair, { ...ref, diff, policy: 'postgres-authoritative' as const }));
      phases.push({
        name: 'decide direction (planRepair)',
        ms: plan.ms,
        note: `${fmtInt(plan.value.total)} actions, severity ${plan.value.severity}`,
      });
      const snapshot = await timed(() => run(acts.snapshotTargets, { ...ref, plan: plan.value }));
      phases.push({
        name: 'snapshot (snapshotTargets)',
        ms: snapshot.ms,
        note: `${fmtInt(snapshot.value.entries)} objects, ${fmtBytes(snapshot.value.bytes)}`,
      });
      const execute = await timed(() =>
        run(acts.executeRepair, {
          ...ref,
          plan: plan.value,
          batchSize: DW_REPAIR_BATCH,
          parallelism: DW_REPAIR_PARALLELISM,
        }),
      );
      phases.push({
        name: 'execute (executeRepair)',
        ms: execute.ms,
        note: `${fmtInt(execute.value.applied)} objects in ${execute.value.batches} batches of ${DW_REPAIR_BATCH}, ${DW_REPAIR_PARALLELISM} at a time`,
      });
      const verify = await timed(() => differences({ a, b }, {}));
      phases.push({
        name: 'verify (full diffStores pass, defaults)',
        ms: verify.ms,
        note: `${verify.value} differences remain`,
      });
      const totalMs = performance.now() - started;
      return {
        pair: c.pair,
        mode: 'activities',
        why,
        ok: verify.value === 0 && execute.value.applied === plan.value.total,
        totalMs,
        workMs: totalMs,
        phases,
        actions: execute.value.applied,
      };
    });
  } finally {
    await stores.close();
  }
}
