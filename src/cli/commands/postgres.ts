import type { Command } from 'commander';
import { EnvironmentError } from '../../activities/environment.js';
import { listPgBackups } from '../../activities/postgres/backup.js';
import { loadPostgresTarget } from '../../activities/postgres/target.js';
import { formatBytes } from '../../shared/bytes.js';
import { loadConfig } from '../../worker/config.js';
import { CliError } from '../errors.js';

export function registerPostgresCommands(program: Command): void {
  const postgres = program.command('postgres').description('Postgres targets');
  postgres
    .command('backups')
    .description(
      "list a Postgres target's backups, newest first: which are verified (signed manifest from a trusted worker key) and why the others are not",
    )
    .requiredOption('--env <name>', 'environment (environments/<name>.yaml)')
    .requiredOption('--target <name>', 'Postgres target in the environment')
    .option('--json', 'print JSON')
    .action(async (opts: { env: string; target: string; json?: boolean }) => {
      let t;
      try {
        const ref = { environment: opts.env, target: opts.target };
        t = await loadPostgresTarget(loadConfig().environmentsDir, ref, undefined, false);
      } catch (err) {
        if (err instanceof EnvironmentError || (err as Error).name === 'ApplicationFailure')
          throw new CliError(`invalid environment: ${(err as Error).message}`);
        throw err;
      }
      // the environment's evidence.workerKeys are the keys whose manifests count (no worker key of our own here)
      const backups = await listPgBackups(t, '');
      if (opts.json) {
        const rows = backups.map(({ manifest, ...b }) => ({
          ...b,
          verified: !b.problem,
          createdAt: manifest?.createdAt,
          sha256: manifest?.dump.sha256,
          rows: manifest?.rows,
        }));
        console.log(JSON.stringify(rows, null, 2));
        return;
      }
      if (backups.length === 0) return console.log(`no backups of ${t.database} in ${t.backupsDir}`);
      console.log(`backups of ${t.database} in ${t.backupsDir} (newest first):`);
      for (const b of backups)
        console.log(
          `  ${b.problem ? 'NOT VERIFIED' : 'verified    '}  ${b.file}  ${formatBytes(b.bytes)}${b.problem ? `  — ${b.problem}` : ''}`,
        );
    });
}
