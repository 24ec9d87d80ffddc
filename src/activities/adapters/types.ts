/** Interfaces every adapter implements; activities pick the adapter from the target's configuration. */

export type FlagValues = Record<string, string | null>;

export interface FlagStore {
  /** current values of the named flags; null when a flag is not set at all */
  read(names: string[]): Promise<FlagValues>;
  /** sets (or, for null, removes) the given flags; idempotent: writes nothing when already equal */
  write(values: FlagValues): Promise<{ changed: boolean }>;
  /** for the plan and evidence: where the flags live, e.g. "env-file /etc/app.env" */
  describe(): string;
}

export interface ServiceState {
  running: boolean;
  detail: string;
}

export interface ServiceAdapter {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** make the service pick up new flags: SIGHUP for processes, a rollout restart for Kubernetes, ... */
  reload(): Promise<void>;
  restart(): Promise<void>;
  status(): Promise<ServiceState>;
  describe(): string;
  /** services with a replica count (Kubernetes): how many replicas it is set to now */
  replicas?(): Promise<number>;
  /** services with a replica count: scale to exactly this many (0 stops it) */
  scale?(replicas: number): Promise<void>;
}

export interface LogMatches {
  count: number;
  sample: string[];
}

export interface LogSource {
  /** an opaque position: matches are counted from here on */
  cursor(): Promise<string>;
  matchesSince(cursor: string, pattern: RegExp): Promise<LogMatches>;
  describe(): string;
}

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/** Runs an executable with an argument array (never a shell). */
export type CommandRunner = (
  file: string,
  args: string[],
  options?: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string },
) => Promise<CommandResult>;
