/** Section 3's Markdown: the repairs of the 1 % cases (repair.ts) and the kill run (kill.ts). */
import { fmtInt, fmtMs, pct } from './format.js';
import type { KillResult } from './kill.js';
import type { RepairResult } from './repair.js';
import {
  DW_BATCH_PAUSE_MS,
  DW_OBJECTS,
  DW_REPAIR_BATCH,
  DW_REPAIR_LEVEL,
  DW_REPAIR_PARALLELISM,
  KILL_AT_FRACTION,
  REPAIR_MODE,
} from './settings.js';

export function repairReport(repairs: RepairResult[]): string[] {
  const lines = [
    '',
    `### Repair of the ${pct(DW_REPAIR_LEVEL)} cases (policy postgres-authoritative: ${fmtInt(Math.round(DW_OBJECTS * DW_REPAIR_LEVEL))} actions, batches of ${DW_REPAIR_BATCH}, ${DW_REPAIR_PARALLELISM} in parallel${DW_BATCH_PAUSE_MS ? `, a ${DW_BATCH_PAUSE_MS} ms pause after each` : ''})`,
    '',
  ];
  if (repairs.length === 0) lines.push('Skipped (`DW_BENCH_REPAIR=skip`).');
  for (const r of repairs) {
    const how =
      r.mode === 'workflow'
        ? 'the real `dualWriteRollback` workflow on a worker in the bench process (`createWorker`), approved by signal as soon as it waited'
        : 'the repair activities themselves (`planRepair`, `snapshotTargets`, `executeRepair` of src/activities/dual-write/, in a `MockActivityEnvironment`, no Temporal server), with the diff file and the final full check made by `diffStores` with its defaults (repair-activities.ts)';
    lines.push(
      `**${r.pair.label}**: ${r.ok ? 'succeeded' : `**failed**${r.error ? `: ${r.error}` : ''}`}; ${how}. Why this way: ${r.why}.`,
      '',
    );
    if (r.phases.length) {
      lines.push(
        '| step | time | |',
        '|---|---:|---|',
        ...r.phases.map((p) => `| ${p.name} | ${fmtMs(p.ms)} | ${p.note ?? ''} |`),
      );
      lines.push(
        `| **total** | **${fmtMs(r.totalMs)}** | ${r.mode === 'workflow' ? `${fmtMs(r.workMs)} without the approval wait` : ''} |`,
        '',
      );
    }
  }
  return lines;
}

export function killReport(k: KillResult | undefined): string[] {
  const out = [
    '',
    `### Resume cost: the ${pct(DW_REPAIR_LEVEL)} repair with its worker SIGKILLed during execute (PG ↔ object store)`,
    '',
  ];
  if (!k) return [...out, `Not run (${REPAIR_MODE === 'skip' ? '`DW_BENCH_REPAIR=skip`' : '`DW_BENCH_KILL=0`'}).`];
  if (k.killAfterMs === undefined) return [...out, `**Failed**: ${k.error ?? 'unknown error'}.`];
  const batches = (n: number) => (n / DW_REPAIR_BATCH).toFixed(1);
  if (!Number.isFinite(k.retryStartedMs))
    out.push(
      `**The kill came too late** (${fmtMs(k.killAfterMs)} into execute): no retried execute attempt was seen, so this run measured no resume; the numbers below are not a resume cost.`,
      '',
    );
  out.push(
    `A third copy of the pair, seeded with the same drift, repaired by the real \`dualWriteRollback\` workflow on a worker child process (\`src/worker/main.ts\`, the bundle prebuilt) that is SIGKILLed ${fmtMs(k.killAfterMs)} into the execute activity (${KILL_AT_FRACTION} × the uninterrupted run's execute step); the differences left are then counted (a diffStores pass, before any new worker exists), and a new worker process is spawned. ${k.ok ? 'The run **succeeded**' : `The run **failed**${k.error ? `: ${k.error}` : ''}`}; execute took ${k.executeAttempts} attempts.`,
    '',
    '| | |',
    '|---|---:|',
    `| server's last recorded heartbeat at the kill | ${k.heartbeat ? `nextBatch ${k.heartbeat.nextBatch ?? '(none)'}, ${fmtMs(k.heartbeat.agoMs)} before the kill` : 'none'} |`,
    `| objects repaired when the worker died | ${fmtInt(k.appliedAtKill)} (${batches(k.appliedAtKill)} batches of ${DW_REPAIR_BATCH}) |`,
    `| retry resumed at batch | ${k.resumedAt} |`,
    `| **work redone** (repaired before the kill, applied again by the retry) | **${fmtInt(k.redone)} objects (${batches(k.redone)} batches; ${DW_REPAIR_PARALLELISM} were in flight)** |`,
    `| applied by the retry | ${fmtInt(k.appliedByRetry)} |`,
    `| new worker: spawn → ready | ${fmtMs(k.startupMs)} |`,
    `| new worker spawn → retried execute started | ${fmtMs(k.retryStartedMs)} (kill → retry: ${fmtMs(k.killToRetryMs)}) |`,
    `| new worker spawn → execute completed | ${fmtMs(k.executeDoneMs)} |`,
    `| **new worker spawn → workflow completed** | **${fmtMs(k.completedMs)}** |`,
    `| whole run, without the approval wait | ${fmtMs(k.workMs)}${k.reference ? ` vs ${fmtMs(k.reference.workMs)} uninterrupted (+${fmtMs(k.workMs - k.reference.workMs)})` : ''} |`,
    '',
  );
  out.push(
    `- The retry waits for the repair activity's heartbeat timeout (10 s after the last recorded heartbeat) plus the retry backoff (1 s), and resumes at the batch the last *recorded* heartbeat names. The SDK sends heartbeats at most every min(0.8 × heartbeat timeout, the worker's \`maxHeartbeatThrottleInterval\`) = 2 s (src/worker/worker.ts), so the server can be up to 2 s of batches behind the worker: everything finished after the last recorded heartbeat is redone, not only the ${DW_REPAIR_PARALLELISM} batches in flight. Redoing is safe (upserts and deletes are idempotent, and the plan's sha256 check still holds).`,
    `- The kill run's worker is a child process; the uninterrupted run used the in-process worker of the bench. The difference in total time is the heartbeat timeout wait, the new worker's startup, the count after the kill and the redone work.`,
  );
  return out;
}
