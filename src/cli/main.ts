import { Command, CommanderError } from 'commander';
import { EXIT_USAGE } from '../shared/constants.js';
import { registerDecisionCommands } from './commands/decide.js';
import { registerDualWriteCommands } from './commands/dual-write.js';
import { registerEvidenceCommands } from './commands/evidence.js';
import { registerKeyCommands } from './commands/keys.js';
import { registerReportCommands } from './commands/report.js';
import { registerRunCommands } from './commands/runs.js';
import { registerSqliteCommands } from './commands/sqlite.js';
import { registerPostgresCommands } from './commands/postgres.js';
import { registerReplayCommands } from './commands/replay.js';
import { registerScheduleCommands } from './commands/schedule.js';
import { registerTriageCommands } from './commands/triage.js';
import { registerAlertCommands } from './commands/alerts.js';
import { CliError } from './errors.js';

export { CliError } from './errors.js';

export function buildProgram(): Command {
  const program = new Command('runbook')
    .description('Start, approve, watch and audit durable rollback runbooks (Temporal workflows)')
    .showHelpAfterError()
    .exitOverride();
  registerRunCommands(program);
  registerDecisionCommands(program);
  registerKeyCommands(program);
  registerDualWriteCommands(program);
  registerEvidenceCommands(program);
  registerSqliteCommands(program);
  registerPostgresCommands(program);
  registerScheduleCommands(program);
  registerReportCommands(program);
  registerReplayCommands(program);
  registerTriageCommands(program);
  registerAlertCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_USAGE;
    if (err instanceof CliError) {
      console.error(`runbook: ${err.message}`);
      return err.exitCode;
    }
    console.error(`runbook: ${(err as Error).message ?? String(err)}`);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
process.exit(code);
