import type { Command } from 'commander';
import { pino } from 'pino';
import { checkWork, storedCheckHeader } from '../../activities/dual-write/check.js';
import { DualWriteContext } from '../../activities/dual-write/context.js';
import { EnvironmentError, loadTarget, type LoadedTarget } from '../../activities/environment.js';
import { StoreFactory } from '../../activities/stores/index.js';
import type { DualWriteConfig } from '../../shared/schemas.js';
import { loadConfig } from '../../worker/config.js';
import { CliError } from '../errors.js';

interface TrackOptions {
  env: string;
  target: string;
  status?: boolean;
  prune?: boolean;
  remove?: boolean;
}

/** The environment's target and its dualWrite section, or a usage error naming the file. */
async function dualWriteTarget(
  environment: string,
  target: string,
  command: string,
): Promise<{ t: LoadedTarget; dw: DualWriteConfig }> {
  let t;
  try {
    t = await loadTarget(loadConfig().environmentsDir, environment, target);
  } catch (err) {
    if (err instanceof EnvironmentError) throw new CliError(`invalid environment: ${err.message}`);
    throw err;
  }
  const dw = t.target.dualWrite;
  if (!dw) throw new CliError(`invalid environment: ${t.file}: targets.${target}.dualWrite: required by ${command}`);
  return { t, dw };
}

export function registerDualWriteCommands(program: Command): void {
  const dualWrite = program.command('dual-write').description('dual-write pairs');
  dualWrite
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
  dualWrite
    .command('track')
    .description(
      'install (idempotent) the change tracking dual-write-check reads with incremental.tracking: trigger — a changes table and triggers on each side — or show, prune or remove it',
    )
    .requiredOption('--env <name>', 'environment (environments/<name>.yaml)')
    .requiredOption('--target <name>', 'dual-write target in the environment')
    .option('--status', 'only show whether tracking is intact on each side (changes nothing)')
    .option('--prune', "delete the marks the target's last check has read (needs a check run since installing)")
    .option('--remove', 'drop the triggers, their function and the changes tables')
    .action(async (opts: TrackOptions) => {
      const action = opts.remove ? 'remove' : opts.prune ? 'prune' : opts.status ? 'status' : 'install';
      if ([opts.remove, opts.prune, opts.status].filter(Boolean).length > 1)
        throw new CliError('dual-write track: give at most one of --status, --prune, --remove');
      const lines = await trackDualWrite(opts.env, opts.target, action).catch((err: Error) => {
        throw err instanceof CliError
          ? err
          : new CliError(`dual-write track ${opts.env}/${opts.target}: ${err.message}`, 1);
      });
      for (const line of lines) console.log(line);
    });
}

/**
 * Installs stored fingerprints on both sides of a dual-write target, with the operator's own credentials (the
 * environment variables the file names). A schema change: the Postgres fill rewrites every row once.
 */
async function prepareDualWrite(environment: string, target: string): Promise<string[]> {
  const { t, dw } = await dualWriteTarget(environment, target, 'dual-write prepare');
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

/**
 * Change tracking on both sides of a dual-write target, with the operator's own credentials: install (idempotent;
 * creates a changes table and triggers in each store — a schema change, done only here), status (reads only),
 * prune (deletes the marks the last stored check has read) or remove.
 */
async function trackDualWrite(
  environment: string,
  target: string,
  action: 'install' | 'status' | 'prune' | 'remove',
): Promise<string[]> {
  const { t, dw } = await dualWriteTarget(environment, target, 'dual-write track');
  const factory = new StoreFactory();
  const lines: string[] = [];
  try {
    let marks: Record<'a' | 'b', { mark: string; identity: string }> | undefined;
    if (action === 'prune') {
      const c = new DualWriteContext({
        environmentsDir: loadConfig().environmentsDir,
        stores: factory,
        log: pino({ level: 'silent' }),
      });
      const header = await storedCheckHeader(checkWork(c, { t, dw }, { environment, target }));
      marks = header?.tracking;
      if (!marks)
        throw new CliError(
          `dual-write track --prune ${environment}/${target}: no check has stored change marks yet (run dual-write-check with incremental.tracking: trigger first)`,
          1,
        );
    }
    for (const side of ['a', 'b'] as const) {
      const label = `${side} (${dw.labels[side]})`;
      // status reads only; the others change the store's schema (a read-only open refuses that)
      const store = await factory.open(dw[side], t.resolvePath, { readOnly: action === 'status' });
      try {
        const tracking = store.tracking;
        if (!tracking) {
          lines.push(`${label}: ${store.describe()} cannot track changes`);
          continue;
        }
        if (action === 'remove') {
          await tracking.remove();
          lines.push(`${label}: ${store.describe()}: change tracking removed`);
          continue;
        }
        if (action === 'prune') {
          const status = await tracking.status();
          if (!status.intact || status.identity !== marks![side].identity) {
            lines.push(
              `${label}: ${store.describe()}: not pruned (${status.why ?? 'installed again since the last check'})`,
            );
            continue;
          }
          lines.push(`${label}: ${store.describe()}: ${await tracking.prune(marks![side].mark)} marks pruned`);
          continue;
        }
        const before = await tracking.status();
        const status = action === 'install' ? await tracking.install() : before;
        const what = `${store.describe()}: ${tracking.describe()}`;
        lines.push(
          status.intact
            ? `${label}: ${what}: ${action === 'install' && !before.intact ? 'installed' : 'intact'} (identity ${status.identity})`
            : `${label}: ${store.describe()}: ${status.why}`,
        );
      } finally {
        await store.close();
      }
    }
  } finally {
    await factory.close();
  }
  if (action !== 'remove' && dw.incremental.tracking !== 'trigger')
    lines.push(
      `note: ${t.file}: targets.${target}.dualWrite.incremental.tracking is ${dw.incremental.tracking}: dual-write-check does not read the tracking until it is trigger`,
    );
  if (action === 'remove' && dw.incremental.tracking === 'trigger')
    lines.push(
      `note: ${t.file}: targets.${target}.dualWrite.incremental.tracking is still trigger: every check now sums every segment (and says why) until it is set to none`,
    );
  return lines;
}
