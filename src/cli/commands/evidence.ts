import type { Command } from 'commander';
import { loadConfig } from '../../worker/config.js';
import { CliError, withClient } from '../errors.js';
import { exportEvidence, verifyEvidence } from '../evidence.js';

export function registerEvidenceCommands(program: Command): void {
  program
    .command('evidence <id>')
    .description('export history, evidence JSON, a Markdown report and a SHA-256 manifest')
    .option('--out <dir>', 'output directory (default: ./evidence-<id>)')
    .action(async (id: string, opts: { out?: string }) =>
      withClient(async (client) => {
        const dir = await exportEvidence(client, id, opts.out ?? `evidence-${id}`);
        console.log(`evidence written to ${dir}`);
      }),
    );

  program
    .command('verify-evidence <dir>')
    .description('check an exported bundle: digests, hash chain, every fact, report, history, and an anchor outside it')
    .option('--worker-key <key>', 'a trusted worker key: "ed25519:…" or a file holding it (repeatable)', collect, [])
    .option('--server <address>', "compare history.json with the run's history on this Temporal server")
    .option('--namespace <ns>', 'namespace on --server', loadConfig().namespace)
    .action(async (dir: string, opts: { workerKey: string[]; server?: string; namespace: string }) => {
      const { problems, anchors } = await verifyEvidence(dir, {
        workerKeys: opts.workerKey,
        server: opts.server ? { address: opts.server, namespace: opts.namespace } : undefined,
        environmentsDir: loadConfig().environmentsDir,
      }).catch((err: Error) => {
        throw new CliError(err.message, 1);
      });
      if (problems.length) {
        for (const p of problems) console.error(`MISMATCH ${p}`);
        throw new CliError(`${dir}: ${problems.length} problem(s): evidence NOT verified`, 1);
      }
      for (const a of anchors) console.log(`anchor: ${a}`);
      console.log(`${dir}: digests, hash chain, facts, report and history agree: evidence verified`);
    });
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];
