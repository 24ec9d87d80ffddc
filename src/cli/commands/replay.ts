import type { Command } from 'commander';
import { userInfo } from 'node:os';
import { pauseSignal, resumeSignal } from '../../shared/messages.js';
import { CliError, queryStatus, withClient } from '../errors.js';

/** `runbook pause <id>` / `runbook resume <id>`: the job-replay run's pause and resume signals. */
export function registerReplayCommands(program: Command): void {
  for (const [name, signal, what] of [
    ['pause', pauseSignal, 'stop starting new batches of a job-replay run (those in flight finish)'],
    ['resume', resumeSignal, 'go on requeueing a paused job-replay run'],
  ] as const) {
    program
      .command(`${name} <id>`)
      .description(what)
      .option('--by <name>', 'who (default: $USER)')
      .option('--reason <text>', 'why')
      .action(async (id: string, opts: { by?: string; reason?: string }) =>
        withClient(async (client) => {
          const status = await queryStatus(client, id);
          if (status.runbook !== 'job-replay')
            throw new CliError(`${id} is a ${status.runbook} run: only job-replay runs ${name}`);
          if (status.outcome) throw new CliError(`${id} has ended (${status.outcome})`, 1);
          const by = opts.by ?? process.env.USER ?? userInfo().username;
          await client.workflow.getHandle(id).signal(signal, { by, ...(opts.reason ? { reason: opts.reason } : {}) });
          console.log(`${name} sent to ${id}`);
        }),
      );
  }
}
