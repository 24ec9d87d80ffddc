import { patched, workflowInfo } from '@temporalio/workflow';
import { formatBytes } from '../shared/bytes.js';
import { lengthenDuration, parseRunbookInput, tightenApproval } from '../shared/input.js';
import { sqliteRecoveryInputSchema, type SqliteRecoveryInput } from '../shared/schemas.js';
import type { RunbookResult } from '../shared/types.js';
import { Runbook } from './engine/runbook.js';
import { runTag } from './sqlite/names.js';
import {
  acts,
  allServices,
  COMMON,
  forensicCopy,
  long,
  nothingToDo,
  SCENARIO_STEPS,
  SQLITE_RECOVERY_STEPS,
  startAndWatch,
  stopServices,
  undo,
  validateLive,
  type Context,
  type Rb,
} from './sqlite/recovery-steps.js';
import { measureRto } from './sqlite/rto.js';

/**
 * SQLite disaster recovery (seed §4): `corruption` (§4.1: .recover into a new file, validated and installed, else
 * the latest verified backup), `wal` (§4.2: the WAL set aside, the main file alone verified), `disk-full` (§4.3:
 * checkpoint, prune backups on the same filesystem, VACUUM when there is room). Each assesses first, read-only:
 * nothing wrong → a result saying so, nothing changed; a dry run ends at the plan.
 */
export async function sqliteRecovery(rawInput: SqliteRecoveryInput): Promise<RunbookResult> {
  const input = parseRunbookInput(sqliteRecoveryInputSchema, rawInput);
  const ref = { environment: input.environment, target: input.target };
  const rb: Rb = new Runbook({
    runbook: 'sqlite-recovery',
    ...ref,
    requester: input.requester,
    reason: input.reason,
    dryRun: input.dryRun,
    steps: SQLITE_RECOVERY_STEPS,
    lockWait: input.lockWait,
  });
  const { workflowId, runId } = workflowInfo();
  const report: Record<string, unknown> = { scenario: input.scenario };

  return rb.run(
    async () => {
      for (const step of SQLITE_RECOVERY_STEPS)
        if (!COMMON.includes(step) && !SCENARIO_STEPS[input.scenario].includes(step))
          rb.skip(step, `not part of the ${input.scenario} procedure`);
      const target = await rb.step('load environment', () => acts.describeSqliteTarget(ref), {
        summarize: (t) => `${t.database}; services ${t.services.map((s) => s.name).join(', ') || 'none'}`,
      });
      rb.usePolicy(tightenApproval(target.approval, input.approval), target.escalation);
      // input may only lengthen the monitoring window (a shorter one is InvalidInput before anything changes)
      const window = patched('recovery-monitor-window')
        ? lengthenDuration('monitorWindow', target.monitor.window, input.monitorWindow)
        : undefined;
      const context = { rb, ref, target, tag: runTag(workflowId, runId), report, input, window };
      if (input.scenario === 'corruption') await corruption(context);
      else if (input.scenario === 'wal') await wal(context);
      else await diskFull(context);
    },
    () => report,
  );
}

// ---- §4.1 database corruption

async function corruption(c: Context): Promise<void> {
  const { rb, ref, tag, report } = c;
  const assessment = await rb.step(
    'assess',
    async () => {
      const check = await long.validateLiveDatabase({ ...ref, integrity: 'full', peek: true });
      const sqlite3 = await acts.sqlite3Recover();
      const backup = await acts.chooseBackup(ref).then(
        (b) => b.chosen.file,
        (err: Error) => `none (${err.message})`,
      );
      return { check, sqlite3, backup };
    },
    {
      summarize: (a) =>
        `integrity: ${a.check.integrity.slice(0, 200)}; ${a.sqlite3.recover ? `sqlite3 ${a.sqlite3.version} can .recover` : a.sqlite3.problem}; newest verified backup: ${a.backup}`,
    },
  );
  report.integrity = assessment.check.integrity;
  // corruption is what integrity_check says; fewer tables or indexes than configured (after a milestone
  // rollback, say) is not corruption, and .recover or a backup would not be the answer to it
  const sound = patched('corruption-by-integrity') ? assessment.check.integrity === 'ok' : assessment.check.ok;
  if (sound) {
    report.path = 'none';
    return nothingToDo(c, `no corruption found (integrity_check ok): nothing changed`);
  }
  const { sqlite3 } = assessment;
  report.sqlite3 = sqlite3;
  await rb.approval({
    summary: `database corruption on ${ref.environment}/${ref.target}: stop services, forensic copy, ${
      sqlite3.recover
        ? `.recover with ${sqlite3.command} ${sqlite3.version} into a new file, validate, install it; if that fails restore ${assessment.backup}`
        : `restore the latest verified backup ${assessment.backup} (${sqlite3.problem})`
    }; validate, start, monitor`,
    changes: [
      ...allServices(c).map((s) => ({ item: `service ${s}`, from: 'running', to: 'stopped, then started' })),
      {
        item: c.target.database,
        from: 'corrupt',
        to: sqlite3.recover ? 'recovered copy (or backup)' : 'latest backup',
      },
    ],
    details: { integrity: assessment.check.problems, sqlite3, backup: assessment.backup, reason: c.input.reason },
  });

  await stopServices(c);
  await forensicCopy(c);
  const putBack = async () => {
    await undo.putBackSqliteForensicCopy({ ...ref, tag });
  };
  let installed = false;
  if (sqlite3.recover) {
    const recovered = await rb.step('recover', () => long.recoverSqliteDatabase({ ...ref, tag }), {
      summarize: (r) =>
        r.ok
          ? `.recover: ${formatBytes(r.sqlBytes)} of SQL → ${formatBytes(r.bytes)} ${r.file}`
          : `.recover failed: ${r.problem}; falls back to the latest backup`,
      undoBefore: () => undo.discardRecoveredDatabase({ ...ref, tag }),
    });
    if (recovered.ok) {
      const checked = await rb.step('validate recovered', () => long.validateRecoveredDatabase({ ...ref, tag }), {
        summarize: (v) =>
          v.validation.ok
            ? `valid: integrity ok, ${v.validation.tables} tables, ${v.validation.indexes} indexes; rows vs ${v.comparedTo?.backup ?? 'no backup'}: ${Object.entries(
                v.comparedTo?.rows ?? {},
              )
                .map(([t, r]) => `${t} ${r.recovered ?? '-'}/${r.backup ?? '-'}`)
                .join(', ')}`
            : `not valid: ${v.validation.problems.join('; ')}; falls back to the latest backup`,
      });
      report.recovered = { rows: checked.comparedTo, problems: checked.validation.problems };
      if (checked.validation.ok) {
        await rb.step(
          'install recovered',
          () => acts.installRecoveredDatabase({ ...ref, tag, sha256: checked.sha256 }),
          {
            summarize: (r) => `recovered copy in place (${r.state})`,
            undoBefore: putBack,
          },
        );
        installed = true;
        report.path = 'recover';
        rb.skip('restore backup', 'the recovered copy was valid and is installed');
      } else rb.skip('install recovered', 'the recovered copy is not valid');
    } else {
      report.recoverProblem = recovered.problem;
      rb.skip('validate recovered', `no recovered copy: ${recovered.problem}`);
      rb.skip('install recovered', 'no recovered copy');
    }
  } else {
    for (const s of ['recover', 'validate recovered', 'install recovered'] as const)
      rb.skip(s, `${sqlite3.problem}: restore the latest backup instead`);
    report.recoverProblem = sqlite3.problem;
  }
  if (!installed) {
    const restored = await rb.step(
      'restore backup',
      async () => {
        const { chosen, skipped } = await long.chooseBackup(ref);
        const staged = await long.stageRestore({ ...ref, backup: chosen, tag });
        await acts.installRestore({ ...ref, tag, rawSha256: staged.rawSha256 });
        return { file: chosen.file, createdAt: chosen.createdAt, skipped };
      },
      {
        summarize: (r) =>
          `restored ${r.file} (taken ${r.createdAt})${r.skipped.length ? `; skipped ${r.skipped.map((s) => s.file).join(', ')}` : ''}`,
        undoBefore: async () => {
          await undo.discardStagedRestore({ ...ref, tag });
          await putBack();
        },
      },
    );
    report.path = 'backup';
    report.backup = restored.file;
  }
  await validateLive(c);
  await startAndWatch(c, true);
  report.rto = measureRto(
    {
      detectedAt: c.input.detectedAt,
      startedAt: rb.state.startedAt,
      steps: rb.state.steps,
      ends: {
        decide: 'approval',
        restore: installed ? 'install recovered' : 'restore backup',
        verify: 'validate',
        healthy: 'health check',
      },
    },
    c.target.rto,
  );
}

// ---- §4.2 WAL corruption

async function wal(c: Context): Promise<void> {
  const { rb, ref, tag, report } = c;
  const now = await rb.step('assess', () => acts.inspectWal(ref), {
    summarize: (w) =>
      w.exists
        ? `WAL ${formatBytes(w.bytes)}: ${w.frames} frames (${w.validFrames} valid, ${w.commits} commits)${w.problems.length ? `; ${w.problems.join('; ')}` : ''}`
        : 'no WAL beside the database',
  });
  report.walBefore = now;
  if (!now.exists || now.bytes === 0)
    return nothingToDo(c, 'no WAL content beside the database: nothing to set aside, nothing changed');
  await rb.approval({
    summary: `WAL recovery on ${ref.environment}/${ref.target}: stop services, forensic copy (db + wal + shm), remove the WAL (${formatBytes(now.bytes)}, ${now.frames} frames, ${now.commits} committed transactions not checkpointed: they are lost), verify the main file alone, start`,
    changes: [
      ...allServices(c).map((s) => ({ item: `service ${s}`, from: 'running', to: 'stopped, then started' })),
      { item: `${c.target.database}-wal`, from: `${now.bytes} bytes`, to: null },
      { item: `${c.target.database}-shm`, from: 'present', to: null },
    ],
    details: { wal: now, reason: c.input.reason },
  });
  await stopServices(c);
  await forensicCopy(c);
  const aside = await rb.step('move wal aside', () => acts.setWalAside({ ...ref, tag }), {
    summarize: (r) =>
      `${r.removed.join(', ') || 'nothing'} removed (kept in the forensic copy); dropped ${formatBytes(r.wal.bytes)}: ${r.wal.validFrames} frames, ${r.wal.commits} transactions${r.wal.uncommittedFrames ? ` + ${r.wal.uncommittedFrames} uncommitted frames` : ''}`,
    undoBefore: () => undo.putBackSqliteForensicCopy({ ...ref, tag }),
  });
  report.dropped = {
    walBytes: aside.wal.bytes,
    frames: aside.wal.frames,
    validFrames: aside.wal.validFrames,
    transactions: aside.wal.commits,
    uncommittedFrames: aside.wal.uncommittedFrames,
    partialBytes: aside.wal.partialBytes,
  };
  await validateLive(c);
  await startAndWatch(c, true);
}

// ---- §4.3 disk space exhaustion

async function diskFull(c: Context): Promise<void> {
  const { rb, ref, report } = c;
  const before = await rb.step('assess', () => acts.measureSqliteSpace(ref), {
    summarize: (s) =>
      `${formatBytes(s.free)} free (threshold ${formatBytes(s.minFree)}); database ${formatBytes(s.dbBytes)} + WAL ${formatBytes(s.walBytes)}, ${s.freePages} free pages; backups ${s.backupsOnSameFilesystem ? 'on the same' : 'on another'} filesystem`,
  });
  report.minFree = before.minFree;
  if (!before.low)
    return nothingToDo(c, `free space ${before.free} bytes is above the threshold ${before.minFree}: nothing changed`);
  const prune = before.backupsOnSameFilesystem
    ? await acts.pruneBackups({ ...ref, dryRun: true })
    : { deleted: [] as string[], freedBytes: 0 };
  const vacuum = before.free >= before.dbBytes;
  const services = allServices(c);
  await rb.approval({
    summary: `disk space on ${ref.environment}/${ref.target}: ${formatBytes(before.free)} free, below ${formatBytes(before.minFree)}: checkpoint (TRUNCATE); ${
      before.backupsOnSameFilesystem
        ? `delete ${prune.deleted.length} backups past retention ${c.target.retention} (${formatBytes(prune.freedBytes)})`
        : 'backups are on another filesystem: not pruned'
    }; ${
      vacuum
        ? `stop ${services.join(', ')}, VACUUM (${before.freePages} free pages, ~${formatBytes(before.freePages * before.pageSize)}), start`
        : `no VACUUM: it needs up to twice the database (${formatBytes(before.dbBytes)}) and ${formatBytes(before.free)} are free`
    }`,
    changes: [
      ...prune.deleted.map((file) => ({ item: file, from: 'backup', to: null })),
      ...(vacuum ? [{ item: c.target.database, from: `${before.freePages} free pages`, to: 'vacuumed' }] : []),
    ],
    details: { space: before, prune: prune.deleted, vacuum, reason: c.input.reason },
  });
  // free space when the recovery starts to act (the assessment may be an approval wait ago)
  const start = await rb.step(
    'checkpoint',
    async () => ({
      free: (await acts.measureSqliteSpace(ref)).free,
      ...(await acts.checkpointDatabase({ ...ref, mode: 'TRUNCATE' })),
    }),
    {
      summarize: (r) =>
        `TRUNCATE: ${r.checkpointed}/${r.log} frames${r.busy ? ' (busy: writers kept part of the WAL)' : ''}; ${formatBytes(r.free)} free`,
    },
  );
  report.freeAtAssessment = before.free;
  report.freeBefore = start.free;
  if (before.backupsOnSameFilesystem) {
    const pruned = await rb.step('prune backups', () => acts.pruneBackups(ref), {
      summarize: (p) => `${p.deleted.length} deleted (${formatBytes(p.freedBytes)}), ${p.kept} kept`,
    });
    report.pruned = pruned.deleted;
    report.prunedBytes = pruned.freedBytes;
  } else rb.skip('prune backups', 'the backups are on another filesystem: deleting them frees nothing here');
  if (vacuum) {
    await stopServices(c);
    const v = await rb.step('vacuum', () => long.vacuumSqliteDatabase(ref), {
      summarize: (r) =>
        r.vacuumed ? `${formatBytes(r.bytesBefore)} → ${formatBytes(r.bytesAfter)}` : (r.reason ?? 'skipped'),
    });
    report.vacuum = v;
    await startAndWatch(c, false);
  } else {
    const why = `VACUUM needs up to twice the database (${before.dbBytes} bytes), ${before.free} bytes free: skipped`;
    for (const s of ['stop services', 'vacuum', 'start services', 'health check'] as const) rb.skip(s, why);
    report.vacuum = { vacuumed: false, reason: why };
  }
  const after = await rb.step('measure space', () => acts.measureSqliteSpace(ref), {
    summarize: (s) =>
      `${formatBytes(start.free)} → ${formatBytes(s.free)} free; database ${formatBytes(before.dbBytes)} → ${formatBytes(s.dbBytes)}`,
  });
  report.freeAfter = after.free;
  report.reclaimed = after.free - start.free;
}
