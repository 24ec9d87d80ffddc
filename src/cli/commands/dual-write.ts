import type { Command } from 'commander';
import { EnvironmentError, loadTarget } from '../../activities/environment.js';
import { StoreFactory } from '../../activities/stores/index.js';
import { loadConfig } from '../../worker/config.js';
import { CliError } from '../errors.js';

export function registerDualWriteCommands(program: Command): void {
  program
    .command('dual-write')
    .description('dual-write pairs')
    .command('prepare')
    .description(
      'install stored row fingerprints (column, trigger, index) on the sides of a dual-write target that configure columns.fingerprint',
    )
    .requiredOption('--env <name>', 'environment (environments/<name>.yaml)')
    .requiredOption('--target <name>', 'dual-write target in the environment')
    .action(async (opts: { env: string; target: string }) => {
      const lines = await prepareDualWrite(opts.env, opts.target).catch((err: Error) => {
        throw err instanceof CliError
          ? err
          : new CliError(`dual-write prepare ${opts.env}/${opts.target}: ${err.message}`, 1);
      });
      for (const line of lines) console.log(line);
    });
}

/**
 * Installs stored fingerprints on both sides of a dual-write target, with the operator's own credentials (the
 * environment variables the file names). A schema change: the Postgres fill rewrites every row once.
 */
async function prepareDualWrite(environment: string, target: string): Promise<string[]> {
  let t;
  try {
    t = await loadTarget(loadConfig().environmentsDir, environment, target);
  } catch (err) {
    if (err instanceof EnvironmentError) throw new CliError(`invalid environment: ${err.message}`);
    throw err;
  }
  const dw = t.target.dualWrite;
  if (!dw)
    throw new CliError(`invalid environment: ${t.file}: targets.${target}.dualWrite: required by dual-write prepare`);
  const factory = new StoreFactory();
  const lines: string[] = [];
  try {
    for (const side of ['a', 'b'] as const) {
      const config = dw[side];
      const label = `${side} (${dw.labels[side]})`;
      if (config.type === 'object-store') {
        const store = await factory.open(config, t.resolvePath);
        await store.close();
        lines.push(`${label}: ${store.describe()} keeps fingerprints in its index (nothing to install)`);
        continue;
      }
      if (!config.columns?.fingerprint) {
        lines.push(
          `${label}: no columns.fingerprint configured: fingerprints are computed per row at every comparison (add one and run this again)`,
        );
        continue;
      }
      // a table that is not prepared yet cannot be opened for comparison; installing is what fixes that
      const store = await factory.open(config, t.resolvePath, { check: false });
      try {
        await store.installFingerprint!();
      } finally {
        await store.close();
      }
      lines.push(
        `${label}: ${store.describe()}: fingerprint column ${config.columns.fingerprint}, its trigger and index installed`,
      );
    }
  } finally {
    await factory.close();
  }
  return lines;
}
