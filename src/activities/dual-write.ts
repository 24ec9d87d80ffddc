import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { Context } from '@temporalio/activity';
import { Runtime } from '@temporalio/worker';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { Logger } from 'pino';
import {
  approvalPolicyOf,
  loadTarget,
  requireSection,
  withEnvironmentErrors,
  type LoadedTarget,
} from './environment.js';
import { sha256 } from './digest.js';
import { diffStores, emptyCounts, type DiffStats, type DriftClass, type DriftEntry } from './stores/diff.js';
import { keyString, sameMeta, sha256Hex } from './stores/fingerprint.js';
import type { StoreFactory } from './stores/index.js';
import type { ObjectMeta, ObjectStoreAdapter, StoredObject } from './stores/types.js';
import type { DualWriteConfig, DualWriteRollbackParams } from '../shared/schemas.js';
import { parseDuration } from '../shared/duration.js';

export interface DualWriteDeps {
  environmentsDir: string;
  stores: StoreFactory;
  log: Logger;
}

export interface DualWriteRef {
  environment: string;
  target: string;
  /** files of this run live under <workDir>/<runKey>/ */
  runKey: string;
}

export type Side = 'a' | 'b';

export interface FileRef {
  path: string;
  sha256: string;
}

export interface DriftReport extends FileRef {
  counts: Record<DriftClass, number>;
  total: number;
  stats: DiffStats;
  durationMs: number;
}

export interface RepairAction {
  objectId: string;
  version: number;
  class: DriftClass;
  action: 'copy' | 'delete';
  from: Side;
  to: Side;
  /** sha256 the copied content must have (copy) */
  sha256?: string;
  /** the repair overwrites a newer copy with an older one */
  olderOverwrite: boolean;
}

export interface RepairPlan extends FileRef {
  total: number;
  byClassAndAction: Record<string, number>;
  toA: number;
  toB: number;
  olderOverwrites: number;
  severity: 'none' | 'warning' | 'critical';
  sample: RepairAction[];
}

export interface SnapshotRef extends FileRef {
  entries: number;
  bytes: number;
}

const MANIFEST_PAGE = 500;

async function sha256File(path: string): Promise<string> {
  return sha256(await readFile(path));
}

async function* readJsonLines<T>(path: string): AsyncGenerator<T> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const line of lines) if (line) yield JSON.parse(line) as T;
}

/** The rows of a JSON-lines file in pages of `size`. */
async function* pagesOf<T>(path: string, size: number): AsyncGenerator<T[]> {
  let page: T[] = [];
  for await (const row of readJsonLines<T>(path)) {
    page.push(row);
    if (page.length >= size) {
      yield page;
      page = [];
    }
  }
  if (page.length) yield page;
}

/** Writes JSON lines to `path` atomically (temp + rename) and returns its digest. */
async function writeJsonLines(
  path: string,
  rows: AsyncIterable<unknown> | Iterable<unknown>,
): Promise<FileRef & { lines: number }> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  const out = createWriteStream(tmp);
  let lines = 0;
  for await (const row of rows) {
    if (!out.write(`${JSON.stringify(row)}\n`)) await once(out, 'drain');
    lines++;
  }
  out.end();
  await once(out, 'finish');
  await rename(tmp, path);
  return { path, sha256: await sha256File(path), lines };
}

async function checkFile(ref: FileRef): Promise<void> {
  const actual = await sha256File(ref.path).catch(() => 'missing');
  if (actual !== ref.sha256)
    throw ApplicationFailure.nonRetryable(
      `${ref.path}: sha256 ${actual} does not match ${ref.sha256} recorded in the workflow`,
      'EvidenceMismatch',
    );
}

/** The decision for one differing object under a policy (see README: direction policies). */
export function decide(entry: DriftEntry, policy: DualWriteRollbackParams['policy'], tieBreaker: Side): RepairAction {
  let winner: Side;
  if (policy === 'postgres-authoritative') winner = 'a';
  else if (policy === 'store-authoritative') winner = 'b';
  else if (!entry.a) winner = 'b';
  else if (!entry.b) winner = 'a';
  else if (entry.a.updatedAt === entry.b.updatedAt) winner = tieBreaker;
  else winner = entry.a.updatedAt > entry.b.updatedAt ? 'a' : 'b';
  const loser: Side = winner === 'a' ? 'b' : 'a';
  const source = entry[winner];
  const overwritten = entry[loser];
  return {
    objectId: entry.objectId,
    version: entry.version,
    class: entry.class,
    action: source ? 'copy' : 'delete',
    from: winner,
    to: loser,
    sha256: source?.sha256,
    olderOverwrite:
      Boolean(source && overwritten && overwritten.updatedAt > source.updatedAt) || Boolean(!source && overwritten),
  };
}

export const createDualWriteActivities = (deps: DualWriteDeps) => {
  const target = (ref: { environment: string; target: string }) =>
    withEnvironmentErrors(async () => {
      const t = await loadTarget(deps.environmentsDir, ref.environment, ref.target);
      return { t, dw: requireSection(t, 'dualWrite') };
    });
  const open = async (t: LoadedTarget, dw: DualWriteConfig): Promise<Record<Side, ObjectStoreAdapter>> => ({
    a: await deps.stores.open(dw.a, t.resolvePath),
    b: await deps.stores.open(dw.b, t.resolvePath),
  });
  const runDir = (t: LoadedTarget, dw: DualWriteConfig, runKey: string) =>
    join(t.resolvePath(dw.workDir), runKey.replace(/[^A-Za-z0-9._-]/g, '_'));
  const closeAll = (s: Record<Side, ObjectStoreAdapter>) => Promise.all([s.a.close(), s.b.close()]);
  // the runtime's meter, not the activity's: one series per target whether detection or verification set it
  const gauge = () =>
    Runtime.instance().metricMeter.createGauge(
      'dual_write_inconsistency_detected',
      'int',
      'objects',
      'Objects that differ between the two sides of a dual-write pair',
    );

  /** Streams the diff of the two sides (or of the keys in `onlyKeys`) into a JSON-lines file. */
  async function detect(ref: DualWriteRef & { phase: string }): Promise<DriftReport> {
    const { t, dw } = await target(ref);
    const stores = await open(t, dw);
    const started = Date.now();
    const counts = emptyCounts();
    let stats: DiffStats | undefined;
    const ctx = Context.current();
    try {
      const entries = (async function* () {
        for await (const entry of diffStores(
          stores.a,
          stores.b,
          {},
          {
            mergeOnly: dw.detection.mode === 'merge',
            pageSize: dw.detection.pageSize,
            segmentRows: dw.detection.segmentRows,
            windowSegments: dw.detection.windowSegments,
            listAbove: dw.detection.listAbove,
            onProgress: (s) => ((stats = s), ctx.heartbeat({ rowsA: s.rowsA, rowsB: s.rowsB })),
          },
        )) {
          counts[entry.class]++;
          yield entry;
        }
      })();
      const file = await writeJsonLines(join(runDir(t, dw, ref.runKey), `${ref.phase}-diff.jsonl`), entries);
      const total = file.lines;
      gauge().set(total, { environment: ref.environment, target: ref.target });
      deps.log.info(
        { target: `${ref.environment}/${ref.target}`, phase: ref.phase, total, counts },
        'dual-write drift detected',
      );
      return { path: file.path, sha256: file.sha256, counts, total, stats: stats!, durationMs: Date.now() - started };
    } finally {
      await closeAll(stores);
    }
  }

  return {
    async describeDualWrite(ref: { environment: string; target: string }) {
      const { t, dw } = await target(ref);
      const stores = await open(t, dw);
      try {
        return {
          environmentFile: t.file,
          a: stores.a.describe(),
          b: stores.b.describe(),
          labels: dw.labels,
          tieBreaker: dw.tieBreaker,
          severity: dw.severity,
          haltTarget: dw.haltTarget,
          batchSize: dw.batchSize,
          parallelism: dw.parallelism,
          partitionObjects: dw.partitionObjects,
          partitionWindow: dw.partitionWindow,
          chunkObjects: dw.chunkObjects,
          approval: approvalPolicyOf(t),
          escalation: t.config.escalation,
        };
      } finally {
        await closeAll(stores);
      }
    },

    detectDrift: (ref: DualWriteRef) => detect({ ...ref, phase: 'detect' }),

    /** Per differing object: both sides' hash, size and timestamps, as a report file plus a sample. */
    async isolateDrift(ref: DualWriteRef & { diff: FileRef }): Promise<FileRef & { sample: string[] }> {
      await checkFile(ref.diff);
      const { t, dw } = await target(ref);
      const side = (m?: ObjectMeta) =>
        m
          ? {
              sha256: m.sha256,
              size: m.size,
              createdAt: new Date(m.createdAt).toISOString(),
              updatedAt: new Date(m.updatedAt).toISOString(),
            }
          : null;
      const sample: string[] = [];
      const rows = (async function* () {
        for await (const e of readJsonLines<DriftEntry>(ref.diff.path)) {
          if (sample.length < 10)
            sample.push(
              `${keyString(e)} ${e.class}: ${dw.labels.a} ${e.a ? `${e.a.sha256.slice(0, 12)} ${e.a.size}B` : 'missing'} | ${dw.labels.b} ${e.b ? `${e.b.sha256.slice(0, 12)} ${e.b.size}B` : 'missing'}`,
            );
          yield {
            objectId: e.objectId,
            version: e.version,
            class: e.class,
            [dw.labels.a]: side(e.a),
            [dw.labels.b]: side(e.b),
          };
        }
      })();
      const file = await writeJsonLines(join(runDir(t, dw, ref.runKey), 'isolation-report.jsonl'), rows);
      return { path: file.path, sha256: file.sha256, sample };
    },

    /** Applies the direction policy to every differing object: the repair plan file and its summary. */
    async planRepair(
      ref: DualWriteRef & { diff: FileRef; policy: DualWriteRollbackParams['policy'] },
    ): Promise<RepairPlan> {
      await checkFile(ref.diff);
      const { t, dw } = await target(ref);
      const byClassAndAction: Record<string, number> = {};
      const sample: RepairAction[] = [];
      let toA = 0;
      let toB = 0;
      let olderOverwrites = 0;
      const rows = (async function* () {
        for await (const e of readJsonLines<DriftEntry>(ref.diff.path)) {
          const a = decide(e, ref.policy, dw.tieBreaker);
          const label = `${e.class}: ${a.action} ${a.action === 'copy' ? `${dw.labels[a.from]} → ${dw.labels[a.to]}` : `from ${dw.labels[a.to]}`}`;
          byClassAndAction[label] = (byClassAndAction[label] ?? 0) + 1;
          if (a.to === 'a') toA++;
          else toB++;
          if (a.olderOverwrite) olderOverwrites++;
          if (sample.length < 10) sample.push(a);
          yield a;
        }
      })();
      const file = await writeJsonLines(join(runDir(t, dw, ref.runKey), 'repair-plan.jsonl'), rows);
      const critical =
        file.lines >= dw.severity.criticalCount || (dw.severity.criticalOnOlderOverwrite && olderOverwrites > 0);
      return {
        path: file.path,
        sha256: file.sha256,
        total: file.lines,
        byClassAndAction,
        toA,
        toB,
        olderOverwrites,
        severity: file.lines === 0 ? 'none' : critical ? 'critical' : 'warning',
        sample,
      };
    },

    /** Copies every object the repair will overwrite or delete (content + metadata, hashed) before any write. */
    async snapshotTargets(ref: DualWriteRef & { plan: FileRef }): Promise<SnapshotRef> {
      await checkFile(ref.plan);
      const { t, dw } = await target(ref);
      const stores = await open(t, dw);
      const dir = join(runDir(t, dw, ref.runKey), 'snapshot');
      const ctx = Context.current();
      let bytes = 0;
      try {
        const entries = (async function* () {
          for await (const page of pagesOf<RepairAction>(ref.plan.path, MANIFEST_PAGE)) {
            for (const side of ['a', 'b'] as const) {
              const keys = page.filter((p) => p.to === side);
              if (keys.length === 0) continue;
              const found = new Map((await stores[side].get(keys)).map((o) => [keyString(o), o]));
              for (const k of keys) {
                const o = found.get(keyString(k));
                if (o) {
                  const blob = join(dir, 'blobs', o.sha256);
                  if (!(await stat(blob).catch(() => undefined))) {
                    await mkdir(dirname(blob), { recursive: true });
                    await writeFile(`${blob}.tmp`, o.content);
                    await rename(`${blob}.tmp`, blob);
                  }
                  bytes += o.size;
                }
                const { content: _content, ...meta } = o ?? ({} as StoredObject);
                yield { side, objectId: k.objectId, version: k.version, existed: Boolean(o), meta: o ? meta : null };
              }
            }
            ctx.heartbeat();
          }
        })();
        const manifest = await writeJsonLines(join(dir, 'manifest.jsonl'), entries);
        return { path: manifest.path, sha256: manifest.sha256, entries: manifest.lines, bytes };
      } finally {
        await closeAll(stores);
      }
    },

    /**
     * Applies the plan in batches (idempotent upserts and deletes). The heartbeat carries the next batch, so a
     * retry after a worker crash resumes after the last finished batch.
     */
    async executeRepair(
      ref: DualWriteRef & {
        plan: FileRef;
        batchSize: number;
        parallelism: number;
        /** plan lines [from, to), default all */ lines?: { from: number; to: number };
      },
    ): Promise<{
      batches: number;
      /** objects of the range applied, by this attempt or (batches before resumedAt) an earlier one */
      applied: number;
      /** objects this attempt applied */
      appliedNow: number;
      resumedAt: number;
    }> {
      await checkFile(ref.plan);
      const { t, dw } = await target(ref);
      const stores = await open(t, dw);
      const ctx = Context.current();
      const pauseMs = parseDuration(dw.batchPause);
      const resumedAt = (ctx.info.heartbeatDetails as { nextBatch?: number } | undefined)?.nextBatch ?? 0;
      const done = new Set<number>();
      let nextBatch = resumedAt;
      let batchIndex = 0;
      let applied = 0;
      let appliedNow = 0;
      const applyBatch = async (index: number, batch: RepairAction[]) => {
        // cancellation (abort, workflow cancel) arrives with a heartbeat: stop between batches
        if (ctx.cancellationSignal.aborted) throw new CancelledFailure('repair cancelled between batches');
        for (const to of ['a', 'b'] as const) {
          const copies = batch.filter((x) => x.to === to && x.action === 'copy');
          const deletes = batch.filter((x) => x.to === to && x.action === 'delete');
          if (copies.length) {
            const from = to === 'a' ? 'b' : 'a';
            const objects = await stores[from].get(copies);
            const byKey = new Map(objects.map((o) => [keyString(o), o]));
            for (const c of copies) {
              const o = byKey.get(keyString(c));
              if (!o || o.sha256 !== c.sha256 || sha256Hex(o.content) !== c.sha256) {
                throw ApplicationFailure.nonRetryable(
                  `${keyString(c)} changed on ${dw.labels[from]} since the plan was approved (expected sha256 ${c.sha256?.slice(0, 12)})`,
                  'PlanStale',
                );
              }
            }
            await stores[to].put(objects);
          }
          if (deletes.length) await stores[to].delete(deletes);
        }
        if (pauseMs) await ctx.sleep(pauseMs);
        applied += batch.length;
        appliedNow += batch.length;
        done.add(index);
        while (done.has(nextBatch)) nextBatch++;
        ctx.heartbeat({ nextBatch });
      };
      try {
        const inflight = new Set<Promise<void>>();
        let batch: RepairAction[] = [];
        const submit = async () => {
          const index = batchIndex++;
          const current = batch;
          batch = [];
          // applied by an earlier attempt (its heartbeat says so): counted, not redone
          if (index < resumedAt) {
            applied += current.length;
            return;
          }
          const p = applyBatch(index, current).finally(() => inflight.delete(p));
          inflight.add(p);
          if (inflight.size >= ref.parallelism) await Promise.race(inflight);
        };
        let line = 0;
        for await (const action of readJsonLines<RepairAction>(ref.plan.path)) {
          const inside = !ref.lines || (line >= ref.lines.from && line < ref.lines.to);
          line++;
          if (!inside) continue;
          batch.push(action);
          if (batch.length >= ref.batchSize) await submit();
        }
        if (batch.length) await submit();
        await Promise.all(inflight);
        deps.log.info(
          { target: `${ref.environment}/${ref.target}`, applied, appliedNow, batches: batchIndex, resumedAt },
          'repair applied',
        );
        return { batches: batchIndex, applied, appliedNow, resumedAt };
      } finally {
        await closeAll(stores);
      }
    },

    /** The undo of snapshot + execute: puts back every snapshotted object, removes what did not exist, verifies. */
    async restoreSnapshot(ref: DualWriteRef & { snapshot: FileRef }): Promise<{ restored: number; verified: number }> {
      await checkFile(ref.snapshot);
      const { t, dw } = await target(ref);
      const stores = await open(t, dw);
      const dir = dirname(ref.snapshot.path);
      type Entry = { side: Side; objectId: string; version: number; existed: boolean; meta: ObjectMeta | null };
      let restored = 0;
      let verified = 0;
      try {
        for await (const e of readJsonLines<Entry>(ref.snapshot.path)) {
          if (e.existed && e.meta) {
            const content = await readFile(join(dir, 'blobs', e.meta.sha256));
            await stores[e.side].put([{ ...e.meta, content }]);
          } else {
            await stores[e.side].delete([e]);
          }
          restored++;
        }
        for await (const e of readJsonLines<Entry>(ref.snapshot.path)) {
          const [now] = await stores[e.side].get([e]);
          const same = e.existed ? now && sameMeta(now, e.meta!) && sha256Hex(now.content) === e.meta!.sha256 : !now;
          if (!same)
            throw new Error(
              `${keyString(e)} on ${dw.labels[e.side]} is not byte-identical to its pre-run snapshot after restore`,
            );
          verified++;
        }
        return { restored, verified };
      } finally {
        await closeAll(stores);
      }
    },

    /** Re-checks the repaired keys, then diffs the full range; throws (VerificationFailed) unless zero remain. */
    async verifyRepair(ref: DualWriteRef & { plan: FileRef }): Promise<{ repairedChecked: number; full: DriftReport }> {
      await checkFile(ref.plan);
      const { t, dw } = await target(ref);
      const stores = await open(t, dw);
      let repairedChecked = 0;
      const wrong: string[] = [];
      try {
        for await (const page of pagesOf<RepairAction>(ref.plan.path, MANIFEST_PAGE)) {
          const [ga, gb] = await Promise.all([stores.a.get(page), stores.b.get(page)]);
          const ma = new Map(ga.map((o) => [keyString(o), o]));
          const mb = new Map(gb.map((o) => [keyString(o), o]));
          for (const k of page) {
            const x = ma.get(keyString(k));
            const y = mb.get(keyString(k));
            const equal = x && y ? sameMeta(x, y) && Buffer.compare(x.content, y.content) === 0 : !x && !y;
            if (!equal && wrong.length < 20) wrong.push(keyString(k));
            repairedChecked++;
          }
          Context.current().heartbeat();
        }
      } finally {
        await closeAll(stores);
      }
      if (wrong.length)
        throw ApplicationFailure.nonRetryable(
          `repaired objects still differ: ${wrong.join(', ')}`,
          'VerificationFailed',
        );
      const full = await detect({ ...ref, phase: 'verify' });
      if (full.total > 0) {
        throw ApplicationFailure.create({
          message: `${full.total} differences remain after the repair (see ${full.path})`,
          type: 'VerificationFailed',
          nonRetryable: true,
          details: [full],
        });
      }
      return { repairedChecked, full };
    },

    /** The seed's artifacts: dual_write_rollback_YYYYMMDD.json and dual_write_verification_YYYYMMDD.json. */
    async writeDualWriteArtifacts(
      ref: DualWriteRef & { day: string; rollback: Record<string, unknown>; verification: Record<string, unknown> },
    ): Promise<{ rollback: FileRef; verification: FileRef }> {
      const { t, dw } = await target(ref);
      const dir = join(runDir(t, dw, ref.runKey), 'assurance');
      await mkdir(dir, { recursive: true });
      const write = async (name: string, doc: Record<string, unknown>): Promise<FileRef> => {
        const path = join(dir, `${name}_${ref.day}.json`);
        const text = `${JSON.stringify(doc, null, 2)}\n`;
        await writeFile(path, text);
        return { path, sha256: sha256(text) };
      };
      return {
        rollback: await write('dual_write_rollback', ref.rollback),
        verification: await write('dual_write_verification', ref.verification),
      };
    },
  };
};
