/**
 * One process of a cluster (a Temporal service, the UI server, a worker): spawned with its output appended to a log
 * file, started until its readiness check passes, stopped with SIGTERM (SIGKILL after a grace period), restarted
 * alone. Every live process is recorded in the data directory, so a start after a crash of whoever ran the cluster
 * (SIGKILL, power loss) first ends what the previous run left behind instead of clashing with it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';

export interface ProcessSpec {
  /** unique in the cluster: frontend, history, matching, worker, ui, worker-1, … */
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  logFile: string;
  /** resolves once the process serves; `lines` are its output so far (stdout and stderr) */
  ready(p: ManagedProcess): Promise<void>;
  /** how long start() waits for ready() (default 90 s) */
  startTimeoutMs?: number;
  /** how long stop() waits after SIGTERM before SIGKILL (default 20 s) */
  stopTimeoutMs?: number;
}

export class ManagedProcess {
  private child?: ChildProcess;
  private exited?: Promise<void>;
  private log?: WriteStream;
  private lineListeners = new Set<(line: string) => void>();

  constructor(
    readonly spec: ProcessSpec,
    private readonly registry: ProcessRegistry,
  ) {}

  get name(): string {
    return this.spec.name;
  }

  /** the pid while it runs */
  get pid(): number | undefined {
    return this.running ? this.child!.pid : undefined;
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** the running child (for its exit event), if any */
  get process(): ChildProcess | undefined {
    return this.child;
  }

  /** Calls `fn` with every line the process writes from now on (until the returned function is called). */
  onLine(fn: (line: string) => void): () => void {
    this.lineListeners.add(fn);
    return () => this.lineListeners.delete(fn);
  }

  /** Resolves with the first line (from now on) that `match` accepts. */
  waitForLine(match: (line: string) => boolean): Promise<string> {
    return new Promise((resolve) => {
      const off = this.onLine((line) => {
        if (!match(line)) return;
        off();
        resolve(line);
      });
    });
  }

  /** Spawns it and waits until ready; a process that exits or times out first is an error naming its log. */
  async start(): Promise<void> {
    if (this.running) return;
    const s = this.spec;
    mkdirSync(dirname(s.logFile), { recursive: true });
    this.log = createWriteStream(s.logFile, { flags: 'a' });
    const child = spawn(s.command, s.args, { cwd: s.cwd, env: s.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const log = this.log;
    // read to the end either way: a full pipe would stop the process
    const onLine = (line: string) => {
      log.write(`${line}\n`);
      for (const fn of this.lineListeners) fn(line);
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        log.end(`--- ${s.name} exited (${signal ?? code}) at ${new Date().toISOString()}\n`);
        this.registry.remove(s.name, child.pid);
        resolve();
      });
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    this.registry.add(s.name, child.pid!);
    const timeoutMs = s.startTimeoutMs ?? 90_000;
    const died = this.exited.then(() => {
      throw new Error(`${s.name} exited (${child.signalCode ?? child.exitCode}) while starting; see ${s.logFile}`);
    });
    const cancelTimeout = new AbortController();
    const timeout = delay(timeoutMs, undefined, { signal: cancelTimeout.signal }).then(() => {
      throw new Error(`${s.name} was not ready after ${timeoutMs / 1000} s; see ${s.logFile}`);
    });
    try {
      await Promise.race([s.ready(this), died, timeout]);
    } catch (err) {
      await this.stop();
      throw err;
    } finally {
      cancelTimeout.abort();
    }
  }

  /** SIGTERM (graceful), SIGKILL after the grace period; resolves once it has exited. */
  async stop(): Promise<void> {
    if (!this.running) return this.exited;
    this.child!.kill('SIGTERM');
    const kill = setTimeout(() => this.child?.kill('SIGKILL'), this.spec.stopTimeoutMs ?? 20_000);
    await this.exited;
    clearTimeout(kill);
  }

  /** Sends `signal` (e.g. SIGKILL for a crash) and, unless it is one a process survives, waits for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    this.child!.kill(signal);
    if (signal === 'SIGKILL' || signal === 'SIGTERM' || signal === 'SIGINT') await this.exited;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

interface Entry {
  pid: number;
  /** the process's start time (clock ticks after boot, /proc/<pid>/stat), so a reused pid is never taken for it */
  started: string;
}

/** `<dataDir>/processes.json`: the processes of the running cluster, by name. */
export class ProcessRegistry {
  constructor(private readonly file: string) {}

  add(name: string, pid: number): void {
    const entries = this.read();
    entries[name] = { pid, started: startTime(pid) ?? '' };
    this.write(entries);
  }

  remove(name: string, pid: number | undefined): void {
    const entries = this.read();
    if (entries[name]?.pid !== pid) return;
    delete entries[name];
    this.write(entries);
  }

  /**
   * Ends the processes a previous run recorded and left running (it was killed before it could stop them): SIGTERM,
   * then SIGKILL after 15 s. Returns their names.
   */
  async reapLeftovers(): Promise<string[]> {
    const entries = this.read();
    const alive = Object.entries(entries).filter(([, e]) => e.started && startTime(e.pid) === e.started);
    for (const [, e] of alive) signalPid(e.pid, 'SIGTERM');
    const deadline = Date.now() + 15_000;
    for (const [, e] of alive) {
      while (startTime(e.pid) === e.started && Date.now() < deadline) await delay(100);
      if (startTime(e.pid) === e.started) signalPid(e.pid, 'SIGKILL');
    }
    this.write({});
    return alive.map(([name]) => name);
  }

  private read(): Record<string, Entry> {
    try {
      return JSON.parse(readFileSync(this.file, 'utf8')) as Record<string, Entry>;
    } catch {
      return {};
    }
  }

  private write(entries: Record<string, Entry>): void {
    mkdirSync(dirname(this.file), { recursive: true });
    writeFileSync(this.file, `${JSON.stringify(entries, null, 2)}\n`);
  }
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Field 22 of /proc/<pid>/stat (after the parenthesised command name, which may contain spaces). */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}
