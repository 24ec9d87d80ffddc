import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../shared/constants.js';
import type { ServiceConfig } from '../../shared/schemas.js';
import { isCommandError, runCommand } from './exec.js';
import type { CommandRunner, ServiceAdapter, ServiceState } from './types.js';

export type SystemdServiceConfig = Extract<ServiceConfig, { type: 'systemd' }>;

const SYSTEMCTL = 'systemctl';
/** what `systemctl is-active` prints, with a non-zero exit, for a unit that is not (yet or any more) active */
const NOT_ACTIVE_STATES = new Set(['inactive', 'failed', 'activating', 'deactivating', 'maintenance', 'unknown']);

/** A systemd unit. `reload` restarts the unit: the service re-reads its flags only on start. */
export class SystemdService implements ServiceAdapter {
  constructor(
    private readonly config: SystemdServiceConfig,
    private readonly runner: CommandRunner = runCommand,
  ) {
    if (config.unit.startsWith('-')) {
      throw ApplicationFailure.nonRetryable(
        `systemd unit "${config.unit}" must not start with "-"`,
        ErrorType.EnvironmentInvalid,
      );
    }
  }

  async start(): Promise<void> {
    await this.runner(SYSTEMCTL, ['start', this.config.unit]);
  }

  async stop(): Promise<void> {
    await this.runner(SYSTEMCTL, ['stop', this.config.unit]);
  }

  reload(): Promise<void> {
    return this.restart();
  }

  async restart(): Promise<void> {
    await this.runner(SYSTEMCTL, ['restart', this.config.unit]);
  }

  async status(): Promise<ServiceState> {
    try {
      const { stdout } = await this.runner(SYSTEMCTL, ['is-active', this.config.unit]);
      return { running: true, detail: stdout.trim() || 'active' };
    } catch (error) {
      const state = isCommandError(error) ? error.stdout.trim() : '';
      if (NOT_ACTIVE_STATES.has(state)) return { running: false, detail: state };
      throw error;
    }
  }

  describe(): string {
    return `systemd unit ${this.config.unit}`;
  }
}
