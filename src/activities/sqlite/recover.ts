import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { repoRoot } from '../../dev/temporal-server.js';
import { ErrorType } from '../../shared/constants.js';
import { sha256File } from '../digest.js';
import { writeFileAtomically } from '../files.js';
import { listBackups } from './backup-files.js';
import type { SqliteDeps } from './deps.js';
import { installDatabase, readForensicCopy } from './forensics.js';
import { heartbeating } from './heartbeat.js';
import {
  companions,
  loadSqliteTarget,
  requireSpace,
  trustedWorkerKeys,
  type SqliteTarget,
  type TargetRef,
} from './target.js';
import { validateDatabase, type ValidationReport } from './validation.js';

// Corruption (seed §4.1): `sqlite3 <db> .recover | sqlite3 <recovered>` into a file beside the database, its
// validation, and installing it. WAL corruption (§4.2): what the WAL holds, and setting it aside.

const builtShell = join(repoRoot, '.tools', 'bin', 'sqlite3');

/**
 * The sqlite3 command the worker runs: SQLITE3_BIN, else the shell `npm run setup` built with .recover
 * (.tools/bin/sqlite3, when the one on PATH cannot), else `sqlite3` on PATH.
 */
export const sqlite3Command = () => process.env.SQLITE3_BIN || (existsSync(builtShell) ? builtShell : 'sqlite3');

export interface Sqlite3Status {
  command: string;
  /** `sqlite3 -version`'s first word, when it ran */
  version?: string;
  /** true when `.recover` can work: the command runs and its SQLite has the sqlite_dbpage table */
  recover: boolean;
  problem?: string;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  error?: NodeJS.ErrnoException;
}

/** Runs the command with an argument array (no shell), bounded in time and output. */
function run(command: string, args: string[], timeoutMs = 10_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout = (stdout + b.toString()).slice(0, 4096)));
    child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(0, 4096)));
    child.once('error', (error: NodeJS.ErrnoException) => resolve({ code: null, stdout, stderr, error }));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Whether `.recover` can run here (read-only: a query on an in-memory database). */
export async function sqlite3Status(command = sqlite3Command()): Promise<Sqlite3Status> {
  const version = await run(command, ['-version']);
  if (version.error || version.code !== 0)
    return {
      command,
      recover: false,
      problem:
        version.error?.code === 'ENOENT'
          ? `${command} is not installed (no such command)`
          : `${command} -version failed: ${version.error?.message ?? version.stderr.trim()}`,
    };
  const v = version.stdout.trim().split(/\s+/)[0];
  const dbpage = await run(command, [':memory:', 'SELECT count(*) FROM sqlite_dbpage']);
  if (dbpage.code !== 0)
    return {
      command,
      version: v,
      recover: false,
      problem: `${command} ${v} cannot run .recover: its SQLite library lacks the sqlite_dbpage table (SQLITE_ENABLE_DBPAGE_VTAB)`,
    };
  return { command, version: v, recover: true };
}

const recoveredPath = (t: SqliteTarget, tag: string) => join(dirname(t.db), `.${basename(t.db)}.recovered-${tag}`);
const recoveredMarker = (t: SqliteTarget, tag: string) => `${recoveredPath(t, tag)}.json`;

export interface RecoverResult {
  ok: boolean;
  /** why there is no recovered file (sqlite3 missing or unable, .recover failed) */
  problem?: string;
  command: string;
  version?: string;
  file: string;
  sqlBytes: number;
  bytes: number;
  /** what either sqlite3 wrote on stderr (the first KiB) */
  stderr: string;
}

export interface RecoveredValidation {
  validation: ValidationReport;
  sha256: string;
  bytes: number;
  /** row counts against the newest verified backup's manifest (for the report: a recovery may lose rows) */
  comparedTo?: {
    backup: string;
    createdAt: string;
    rows: Record<string, { backup: number | null; recovered: number | null }>;
  };
}

/** `sqlite3 <db> .recover` piped into `sqlite3 <out>`: two processes, argv arrays, streamed, heartbeating bytes. */
function recoverInto(command: string, db: string, out: string, progress: (bytes: number) => void) {
  return new Promise<{ sqlBytes: number; codes: [number | null, number | null]; stderr: string; error?: string }>(
    (resolve) => {
      const source = spawn(command, [db, '.recover'], { stdio: ['ignore', 'pipe', 'pipe'] });
      const sink = spawn(command, [out], { stdio: ['pipe', 'ignore', 'pipe'] });
      let sqlBytes = 0;
      let stderr = '';
      let error: string | undefined;
      const keep = (b: Buffer) => (stderr = (stderr + b.toString()).slice(0, 1024));
      source.stderr.on('data', keep);
      sink.stderr.on('data', keep);
      source.stdout.on('data', (b: Buffer) => {
        sqlBytes += b.length;
        progress(sqlBytes);
      });
      source.stdout.pipe(sink.stdin);
      sink.stdin.on('error', (e) => (error ??= e.message));
      for (const p of [source, sink]) p.once('error', (e) => (error ??= e.message));
      const closed = (p: typeof source | typeof sink) =>
        new Promise<number | null>((r) => {
          if (p.exitCode !== null) r(p.exitCode);
          else p.once('close', (code) => r(code));
        });
      void Promise.all([closed(source), closed(sink)]).then((codes) => resolve({ sqlBytes, codes, stderr, error }));
    },
  );
}

// ---- the WAL (https://www.sqlite.org/fileformat.html#the_write_ahead_log)

export interface WalReport {
  exists: boolean;
  bytes: number;
  pageSize: number;
  /** complete frames in the file */
  frames: number;
  /** frames whose salt and checksum chain hold (SQLite would replay up to the last commit among them) */
  validFrames: number;
  /** commit frames among the valid ones: committed transactions not yet checkpointed into the database */
  commits: number;
  /** valid frames after the last commit: a transaction that never committed */
  uncommittedFrames: number;
  /** bytes past the last complete frame (a frame cut short) */
  partialBytes: number;
  /** what is wrong with the WAL, if anything */
  problems: string[];
}

/** Reads the WAL's header and frames and checks their salts and checksums (read-only). */
export function parseWal(wal: Buffer): WalReport {
  const report: WalReport = {
    exists: true,
    bytes: wal.length,
    pageSize: 0,
    frames: 0,
    validFrames: 0,
    commits: 0,
    uncommittedFrames: 0,
    partialBytes: 0,
    problems: [],
  };
  if (wal.length < 32) {
    if (wal.length > 0) report.problems.push(`${wal.length} bytes: shorter than a WAL header`);
    report.partialBytes = wal.length;
    return report;
  }
  const magic = wal.readUInt32BE(0);
  if (magic !== 0x377f0682 && magic !== 0x377f0683) {
    report.problems.push(`bad magic 0x${magic.toString(16)}`);
    return report;
  }
  const bigEndian = magic === 0x377f0683;
  const word = (at: number) => (bigEndian ? wal.readUInt32BE(at) : wal.readUInt32LE(at));
  const sum = (from: number, to: number, s: [number, number]): [number, number] => {
    let [s0, s1] = s;
    for (let i = from; i < to; i += 8) {
      s0 = (s0 + word(i) + s1) >>> 0;
      s1 = (s1 + word(i + 4) + s0) >>> 0;
    }
    return [s0, s1];
  };
  const pageSize = wal.readUInt32BE(8) === 1 ? 65536 : wal.readUInt32BE(8);
  report.pageSize = pageSize;
  const salt = [wal.readUInt32BE(16), wal.readUInt32BE(20)];
  let s = sum(0, 24, [0, 0]);
  if (s[0] !== wal.readUInt32BE(24) || s[1] !== wal.readUInt32BE(28)) report.problems.push('header checksum mismatch');
  const frameSize = 24 + pageSize;
  report.frames = Math.floor((wal.length - 32) / frameSize);
  report.partialBytes = (wal.length - 32) % frameSize;
  if (report.partialBytes)
    report.problems.push(`last frame cut short: ${report.partialBytes} bytes past frame ${report.frames}`);
  let sinceCommit = 0;
  for (let f = 0; f < report.frames && report.problems[0] !== 'header checksum mismatch'; f++) {
    const at = 32 + f * frameSize;
    if (wal.readUInt32BE(at + 8) !== salt[0] || wal.readUInt32BE(at + 12) !== salt[1]) break;
    s = sum(at + 24, at + frameSize, sum(at, at + 8, s));
    if (s[0] !== wal.readUInt32BE(at + 16) || s[1] !== wal.readUInt32BE(at + 20)) {
      report.problems.push(`frame ${f + 1}: checksum mismatch`);
      break;
    }
    report.validFrames += 1;
    sinceCommit += 1;
    if (wal.readUInt32BE(at + 4) !== 0) {
      report.commits += 1;
      sinceCommit = 0;
    }
  }
  report.uncommittedFrames = sinceCommit;
  if (report.validFrames < report.frames)
    report.problems.push(`${report.frames - report.validFrames} frames after the last valid one (stale or damaged)`);
  return report;
}

export const createSqliteRecoverActivities = (deps: SqliteDeps) => {
  const load = (ref: TargetRef) => loadSqliteTarget(deps.environmentsDir, ref, deps.runner);

  return {
    /** Whether this worker can run `.recover` (SQLITE3_BIN or sqlite3 on PATH). Read-only. */
    async sqlite3Recover(): Promise<Sqlite3Status> {
      return sqlite3Status();
    },

    /**
     * `.recover` of the (stopped) database into `.<db>.recovered-<tag>` beside it. Never throws for what
     * `.recover` cannot do: `ok: false` with the reason, and the workflow restores the latest backup instead.
     * Idempotent: a finished recovery (marker file) is returned as it was.
     */
    async recoverSqliteDatabase(ref: TargetRef & { tag: string }): Promise<RecoverResult> {
      const t = await load(ref);
      const file = recoveredPath(t, ref.tag);
      const previous = await readFile(recoveredMarker(t, ref.tag), 'utf8').then(
        (s) => JSON.parse(s) as RecoverResult,
        () => undefined,
      );
      if (previous && (await stat(file).catch(() => undefined))?.size === previous.bytes) return previous;
      const status = await sqlite3Status();
      const base = { command: status.command, version: status.version, file, sqlBytes: 0, bytes: 0, stderr: '' };
      if (!status.recover) return { ok: false, problem: status.problem, ...base };
      const size = (await stat(t.db).catch(() => undefined))?.size ?? 0;
      await requireSpace(dirname(t.db), size, '.recover of the database');
      for (const f of [file, `${file}-journal`, `${file}-wal`, `${file}-shm`]) await unlink(f).catch(() => {});
      let sqlBytes = 0;
      const r = await heartbeating(
        recoverInto(status.command, t.db, file, (n) => (sqlBytes = n)),
        () => ({ sqlBytes }),
      );
      const bytes = (await stat(file).catch(() => undefined))?.size ?? 0;
      const result: RecoverResult = { ...base, ok: true, sqlBytes: r.sqlBytes, bytes, stderr: r.stderr.trim() };
      if (r.error || r.codes[0] !== 0 || bytes === 0) {
        result.ok = false;
        result.problem = `sqlite3 exited ${r.codes.join('/')}${r.error ? ` (${r.error})` : ''}: ${r.stderr.trim().slice(0, 300) || 'no output'}`;
        await unlink(file).catch(() => {});
        return result;
      }
      await writeFileAtomically(recoveredMarker(t, ref.tag), JSON.stringify(result));
      deps.log.warn({ target: `${ref.environment}/${ref.target}`, file, bytes }, '.recover wrote a recovered copy');
      return result;
    },

    /** The seed's checklist on the recovered copy, and its row counts against the newest verified backup's. */
    async validateRecoveredDatabase(ref: TargetRef & { tag: string }): Promise<RecoveredValidation> {
      const t = await load(ref);
      const file = recoveredPath(t, ref.tag);
      const validation = await heartbeating(validateDatabase(file, t.config, { integrity: 'full' }));
      for (const f of [`${file}-wal`, `${file}-shm`]) await unlink(f).catch(() => {});
      const backups = await listBackups(t.backupsDir, t.prefix, await trustedWorkerKeys(t, deps.signingKey.publicKey));
      const newest = backups.find((b) => !b.problem)?.manifest;
      const comparedTo = newest && {
        backup: newest.file,
        createdAt: newest.createdAt,
        rows: Object.fromEntries(
          Object.keys({ ...newest.rows, ...validation.rows }).map((k) => [
            k,
            { backup: newest.rows[k] ?? null, recovered: validation.rows[k] ?? null },
          ]),
        ),
      };
      return {
        validation,
        sha256: await heartbeating(sha256File(file)),
        bytes: (await stat(file)).size,
        ...(comparedTo ? { comparedTo } : {}),
      };
    },

    /** The recovered copy in place of the database (its old wal and shm go first; one rename). Idempotent. */
    async installRecoveredDatabase(ref: TargetRef & { tag: string; sha256: string }): Promise<{ state: string }> {
      const t = await load(ref);
      const state = await installDatabase(t.db, recoveredPath(t, ref.tag), ref.sha256);
      await unlink(recoveredMarker(t, ref.tag)).catch(() => {});
      deps.log.warn({ target: `${ref.environment}/${ref.target}`, state }, 'database replaced by its recovered copy');
      return { state };
    },

    /** Removes a recovered copy that was not installed. */
    async discardRecoveredDatabase(ref: TargetRef & { tag: string }): Promise<void> {
      const t = await load(ref);
      const file = recoveredPath(t, ref.tag);
      for (const f of [file, `${file}-journal`, `${file}-wal`, `${file}-shm`, recoveredMarker(t, ref.tag)])
        await unlink(f).catch(() => {});
    },

    /** What the WAL beside the database holds (read-only). */
    async inspectWal(ref: TargetRef): Promise<WalReport> {
      const t = await load(ref);
      const wal = await readFile(companions(t.db).wal).catch(() => undefined);
      if (!wal) return { ...parseWal(Buffer.alloc(0)), exists: false };
      return parseWal(wal);
    },

    /**
     * Seed §4.2: the WAL and shm leave the database's directory. Only once the run's forensic copy holds them
     * byte-identical (the undo puts that copy back). Idempotent.
     */
    async setWalAside(ref: TargetRef & { tag: string }): Promise<{ removed: string[]; wal: WalReport }> {
      const t = await load(ref);
      const copy = await readForensicCopy(join(t.forensicsDir, ref.tag)).catch(() => undefined);
      if (!copy)
        throw ApplicationFailure.nonRetryable(
          `no forensic copy ${ref.tag}: the WAL is not removed without one`,
          ErrorType.VerificationFailed,
        );
      const { wal, shm } = companions(t.db);
      const held = copy.files.find((f) => f.role === 'wal');
      const walBytes = await readFile(join(copy.dir, held?.name ?? basename(wal))).catch(() => Buffer.alloc(0));
      const removed: string[] = [];
      for (const [role, path] of [
        ['wal', wal],
        ['shm', shm],
      ] as const) {
        const now = await sha256File(path).catch(() => undefined);
        if (now === undefined) continue;
        const kept = copy.files.find((f) => f.role === role);
        if (kept?.sha256 !== now)
          throw ApplicationFailure.nonRetryable(
            `${path} differs from the forensic copy (is a service still running?): not removed`,
            ErrorType.VerificationFailed,
          );
        await unlink(path);
        removed.push(basename(path));
      }
      const d = await open(dirname(t.db), 'r');
      await d.sync().finally(() => d.close());
      return { removed, wal: held ? parseWal(walBytes) : { ...parseWal(Buffer.alloc(0)), exists: false } };
    },
  };
};
