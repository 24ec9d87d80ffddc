import type { ServiceConfig } from '../../shared/schemas.js';
import { runCommand } from './exec.js';
import type { CommandRunner, ServiceAdapter, ServiceState } from './types.js';

export type ComposeServiceConfig = Extract<ServiceConfig, { type: 'compose' }>;

const DOCKER = 'docker';

interface ComposeContainer {
  Name?: string;
  Service?: string;
  State?: string;
  Status?: string;
}

/**
 * `docker compose ps --format json` prints a JSON array (Compose before 2.21) or one JSON object per line
 * (Compose 2.21 and later); nothing at all when no container of the service is running.
 */
export function parseComposePs(stdout: string): ComposeContainer[] {
  const text = stdout.trim();
  if (text === '') return [];
  try {
    if (text.startsWith('[')) return JSON.parse(text) as ComposeContainer[];
    return text
      .split(/\r?\n/)
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as ComposeContainer);
  } catch {
    throw new Error(`docker compose ps returned output that is not JSON: ${text.slice(0, 200)}`);
  }
}

/** One service of a Compose project; `file` is the absolute path of the compose file. */
export class ComposeService implements ServiceAdapter {
  constructor(
    private readonly config: ComposeServiceConfig,
    private readonly runner: CommandRunner = runCommand,
  ) {}

  async start(): Promise<void> {
    await this.compose(['up', '-d', this.config.service]);
  }

  async stop(): Promise<void> {
    await this.compose(['stop', this.config.service]);
  }

  reload(): Promise<void> {
    return this.restart();
  }

  async restart(): Promise<void> {
    await this.compose(['restart', this.config.service]);
  }

  /** running when the service has containers and every one of them is in State "running" */
  async status(): Promise<ServiceState> {
    const { stdout } = await this.compose(['ps', '--format', 'json', this.config.service]);
    const containers = parseComposePs(stdout);
    if (containers.length === 0) return { running: false, detail: 'no running containers' };
    const running = containers.every((c) => c.State === 'running');
    const detail = containers
      .map((c) => `${c.Name ?? this.config.service}: ${c.State ?? 'unknown'}${c.Status ? ` (${c.Status})` : ''}`)
      .join('; ');
    return { running, detail };
  }

  describe(): string {
    return `docker compose service ${this.config.service} (${this.config.file})`;
  }

  private compose(args: string[]) {
    return this.runner(DOCKER, ['compose', '-f', this.config.file, ...args]);
  }
}
