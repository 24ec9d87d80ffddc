import type { Command } from 'commander';
import { loadConfig } from '../../worker/config.js';
import { createAlertReceiver } from '../alert-receiver.js';
import { connect } from '../client.js';

/** `runbook alert-receiver`: Alertmanager's webhook → triage runs waiting for approval. */
export function registerAlertCommands(program: Command): void {
  program
    .command('alert-receiver')
    .description('receive Alertmanager webhooks; a firing alert starts a triage run that waits for approval')
    .requiredOption('--port <n>', 'port to listen on')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--env <name>', 'environment of alerts without an "environment" label')
    .action(async (opts: { port: string; host: string; env?: string }) => {
      const config = loadConfig();
      const { client } = await connect();
      const server = createAlertReceiver({
        client,
        taskQueue: config.taskQueue,
        environmentsDir: config.environmentsDir,
        ...(opts.env && { defaultEnvironment: opts.env }),
      });
      await new Promise<void>((resolve) => server.listen(Number(opts.port), opts.host, resolve));
      console.log(`alert receiver listening on http://${opts.host}:${opts.port}/`);
      await new Promise<void>((resolve) => process.once('SIGTERM', resolve).once('SIGINT', resolve));
      server.close();
    });
}
