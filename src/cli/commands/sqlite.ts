import type { Command } from 'commander';
import { EnvironmentError } from '../../activities/environment.js';
import { listBackups } from '../../activities/sqlite/backup-files.js';
import { loadSqliteTarget, trustedWorkerKeys } from '../../activities/sqlite/target.js';
import { formatBytes } from '../../shared/bytes.js';
import { loadConfig } from '../../worker/config.js';
import { CliError } from '../errors.js';

export function registerSqliteCommands(program: Command): void {
  const sqlite = program.command('sqlite').description('SQLite targets');
  sqlite
    .command('backups')
    .description(
      "list a SQLite target's backups, newest first: which are verified (signed manifest from a trusted worker key) and why the others are not",
    )
    .requiredOption('--env <name>', 'environment (environments/<name>.yaml)')
    .requiredOption('--target <name>', 'SQLite target in the environment')
    .option('--json', 'print JSON')
    .action(async (opts: { env: string; target: string; json?: boolean }) => {
      let t;
      try {
        t = await loadSqliteTarget(loadConfig().environmentsDir, { environment: opts.env, target: opts.target });
      } catch (err) {
        if (err instanceof EnvironmentError || (err as Error).name === 'ApplicationFailure')
          throw new CliError(`invalid environment: ${(err as Error).message}`);
        throw err;
      }
      // the environment's evidence.workerKeys are the keys whose manifests count (no worker key of our own here)
      const keys = (await trustedWorkerKeys(t, '')).filter(Boolean);
      const backups = await listBackups(t.backupsDir, t.prefix, keys);
      if (opts.json) {
        console.log(
          JSON.stringify(
            backups.map(({ manifest, ...b }) => ({
              ...b,
              verified: !b.problem,
              createdAt: manifest?.createdAt,
              rawBytes: manifest?.raw.bytes,
              sha256: manifest?.compressed.sha256,
            })),
            null,
            2,
          ),
        );
        return;
      }
      if (backups.length === 0) {
        console.log(`no backups of ${t.db} in ${t.backupsDir}`);
        return;
      }
      console.log(`backups of ${t.db} in ${t.backupsDir} (newest first):`);
      for (const b of backups) {
        const size = `${formatBytes(b.bytes)}${b.manifest ? ` (${formatBytes(b.manifest.raw.bytes)} raw)` : ''}`;
        console.log(
          `  ${b.problem ? 'NOT VERIFIED' : 'verified    '}  ${b.file}  ${size}${b.problem ? `  — ${b.problem}` : ''}`,
        );
      }
    });
}
