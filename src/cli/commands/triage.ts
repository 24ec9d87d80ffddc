import type { Command } from 'commander';
import { CliError } from '../errors.js';
import { startRunbook, type StartOptions } from './runs.js';

/** `runbook triage`: starts the triage runbook with the operator's symptoms (names of triage.matrix rows). */
export function registerTriageCommands(program: Command): void {
  program
    .command('triage')
    .description("measure and take symptoms, propose the decision matrix's chain, run it after one approval")
    .requiredOption('--env <name>', 'environment (environments/<name>.yaml)')
    .requiredOption('--target <name>', 'target in the environment')
    .option('--symptom <names>', 'symptoms seen (comma-separated names of triage.matrix rows)')
    .option('--no-measure', 'take only the given symptoms: measure nothing')
    .option('--input <json|@file>', 'more input fields as JSON (approval, lockWait, incidentTicket)')
    .option('--requester <name>', 'who asks for this run (default: $USER)')
    .option('--reason <text>', 'why (shown in the plan and passed to every runbook of the chain)')
    .option('--dry-run', 'read-only: measure and propose the chain, change nothing')
    .option('--id <id>', 'workflow id (default: triage--<env>--<target>)')
    .option('--wait', 'watch until it ends; exit code follows the outcome')
    .action(async (opts: StartOptions & { symptom?: string; measure: boolean }) => {
      const symptoms = (opts.symptom ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (!opts.measure && symptoms.length === 0) throw new CliError('--no-measure needs --symptom');
      await startRunbook('triage', opts, { symptoms, ...(opts.measure ? {} : { noMeasure: true }) });
    });
}
