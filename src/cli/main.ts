import { Command, CommanderError } from 'commander';
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { abortSignal, approveSignal, rejectSignal, statusQuery } from '../shared/messages.js';
import { EXIT_USAGE } from '../shared/constants.js';
import { RUNBOOKS, defaultWorkflowId } from '../shared/runbooks.js';
import { describeZodError } from '../shared/schemas.js';
import type { RunbookStatus } from '../shared/types.js';
import { loadTarget, EnvironmentError } from '../activities/environment.js';
import { loadConfig } from '../worker/config.js';
import { StoreFactory } from '../activities/stores/index.js';
import { connect, finished } from './client.js';
import { formatStatus } from './format.js';
import { watchRun } from './watch.js';
import { exportEvidence, verifyEvidenceDir } from './evidence.js';

/** An expected error: printed as one line, exit code as given, no stack trace. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = EXIT_USAGE,
  ) {
    super(message);
  }
}

const keys = {
  RunbookName: defineSearchAttributeKey('RunbookName', SearchAttributeType.KEYWORD),
  Environment: defineSearchAttributeKey('Environment', SearchAttributeType.KEYWORD),
  Target: defineSearchAttributeKey('Target', SearchAttributeType.KEYWORD),
};

async function withClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const { client, close } = await connect().catch((err: Error) => {
    throw new CliError(`cannot reach Temporal at ${loadConfig().address}: ${err.message}`, 1);
  });
  try {
    return await fn(client);
  } finally {
    await close();
  }
}

async function queryStatus(client: Client, id: string): Promise<RunbookStatus> {
  const handle = client.workflow.getHandle(id);
  try {
    return await handle.query(statusQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new CliError(`no workflow with id "${id}"`, 1);
    // a closed run can still be read from its result when no worker is there to answer the query
    const description = await handle.describe().catch(() => undefined);
    if (description && description.status.name !== 'RUNNING') {
      const { result } = await finished(handle);
      if (result) return result;
    }
    throw new CliError(`cannot query ${id}: ${(err as Error).message} (is a worker running on its task queue?)`, 1);
  }
}

async function parseInput(text: string | undefined): Promise<Record<string, unknown>> {
  if (!text) return {};
  const raw = text.startsWith('@')
    ? await readFile(text.slice(1), 'utf8').catch(() => {
        throw new CliError(`--input: cannot read ${text.slice(1)}`);
      })
    : text;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new CliError(`--input: malformed JSON: ${(err as Error).message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new CliError('--input: must be a JSON object');
  return value as Record<string, unknown>;
}

export function buildProgram(): Command {
  const program = new Command('runbook')
    .description('Start, approve, watch and audit durable rollback runbooks (Temporal workflows)')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('list')
    .description('list the runbooks this CLI can start')
    .action(() => {
      for (const [name, def] of Object.entries(RUNBOOKS))
        console.log(`${name.padEnd(26)} ${def.workflowType.padEnd(22)} ${def.description}`);
    });

  program
    .command('start <runbook>')
    .description('validate the input and environment, then start a runbook')
    .requiredOption('--env <name>', 'environment (environments/<name>.yaml)')
    .option('--target <name>', 'target in the environment (or "target" in --input)')
    .option('--input <json|@file>', 'runbook input as JSON, or @path to a JSON file')
    .option('--requester <name>', 'who asks for this run (default: $USER)')
    .option('--reason <text>', 'why (shown in the plan and the notification)')
    .option('--dry-run', 'read-only: produce the plan and evidence, change nothing')
    .option('--id <id>', 'workflow id (default: <runbook>--<env>--<target>)')
    .option('--wait', 'watch until it ends; exit code follows the outcome')
    .action(
      async (
        name: string,
        opts: {
          env: string;
          target?: string;
          input?: string;
          requester?: string;
          reason?: string;
          dryRun?: boolean;
          id?: string;
          wait?: boolean;
        },
      ) => {
        const def = RUNBOOKS[name];
        if (!def) throw new CliError(`unknown runbook "${name}" (known: ${Object.keys(RUNBOOKS).join(', ')})`);
        const raw = await parseInput(opts.input);
        const input = {
          ...raw,
          environment: opts.env,
          ...(opts.target ? { target: opts.target } : {}),
          ...(opts.requester || !raw.requester
            ? { requester: opts.requester ?? process.env.USER ?? userInfo().username }
            : {}),
          ...(opts.reason ? { reason: opts.reason } : {}),
          ...(opts.dryRun ? { dryRun: true } : {}),
        };
        const parsed = def.schema.safeParse(input);
        if (!parsed.success) throw new CliError(`invalid input: ${describeZodError(parsed.error)}`);
        const { environment, target } = parsed.data;
        try {
          await loadTarget(loadConfig().environmentsDir, environment, target);
        } catch (err) {
          if (err instanceof EnvironmentError) throw new CliError(`invalid environment: ${err.message}`);
          throw err;
        }
        const workflowId = opts.id ?? defaultWorkflowId(name, environment, target);
        await withClient(async (client) => {
          const busy = client.workflow.list({
            query: `RunbookName = '${name}' AND Environment = '${environment}' AND Target = '${target}' AND ExecutionStatus = 'Running'`,
          });
          for await (const running of busy) {
            throw new CliError(
              `target ${environment}/${target} is busy: workflow "${running.workflowId}" is already running ${name} on it`,
              1,
            );
          }
          let handle;
          try {
            handle = await client.workflow.start(def.workflowType, {
              taskQueue: loadConfig().taskQueue,
              workflowId,
              args: [input],
              workflowIdConflictPolicy: 'FAIL',
              typedSearchAttributes: [
                { key: keys.RunbookName, value: name },
                { key: keys.Environment, value: environment },
                { key: keys.Target, value: target },
              ],
            });
          } catch (err) {
            if (err instanceof WorkflowExecutionAlreadyStartedError) {
              throw new CliError(
                `target ${environment}/${target} is busy: workflow "${workflowId}" is already running`,
                1,
              );
            }
            throw err;
          }
          console.log(`started ${name} on ${environment}/${target}`);
          console.log(`workflow id: ${handle.workflowId}`);
          console.log(`run id:      ${handle.firstExecutionRunId}`);
          if (opts.wait) process.exitCode = await watchRun(client, handle.workflowId);
        });
      },
    );

  program
    .command('status <id>')
    .description('show steps, plan, approvals, escalation and outcome')
    .option('--json', 'print the raw status JSON')
    .action(async (id: string, opts: { json?: boolean }) =>
      withClient(async (client) => {
        const status = await queryStatus(client, id);
        console.log(opts.json ? JSON.stringify(status, null, 2) : formatStatus(status));
      }),
    );

  program
    .command('watch <id>')
    .description('follow a run live; exits with the outcome')
    .action(async (id: string) =>
      withClient(async (client) => {
        process.exitCode = await watchRun(client, id);
      }),
    );

  program
    .command('approve <id>')
    .description('approve the current plan (the plan hash defaults to the one in status)')
    .requiredOption('--by <name>', 'approver')
    .option('--comment <text>', 'comment recorded with the approval')
    .option('--plan <hash>', 'plan hash (≥ 12 hex chars) you reviewed')
    .action(async (id: string, opts: { by: string; comment?: string; plan?: string }) =>
      withClient(async (client) => {
        const status = await queryStatus(client, id);
        const planHash = opts.plan ?? status.planHash;
        if (!planHash)
          throw new CliError(`${id} has no plan yet (phase ${status.phase}); try again when it waits for approval`, 1);
        await client.workflow.getHandle(id).signal(approveSignal, { by: opts.by, comment: opts.comment, planHash });
        await report(client, id, 'approve', opts.by, status.approval.records.length);
      }),
    );

  program
    .command('reject <id>')
    .description('reject the plan: nothing changes, the run ends as rejected')
    .requiredOption('--by <name>', 'approver')
    .option('--comment <text>', 'why')
    .action(async (id: string, opts: { by: string; comment?: string }) =>
      withClient(async (client) => {
        const status = await queryStatus(client, id);
        await client.workflow
          .getHandle(id)
          .signal(rejectSignal, { by: opts.by, comment: opts.comment, planHash: status.planHash });
        await report(client, id, 'reject', opts.by, status.approval.records.length);
      }),
    );

  program
    .command('abort <id>')
    .description('stop the run and undo what it changed (outcome aborted)')
    .requiredOption('--by <name>', 'who aborts')
    .requiredOption('--reason <text>', 'why')
    .action(async (id: string, opts: { by: string; reason: string }) =>
      withClient(async (client) => {
        await queryStatus(client, id);
        await client.workflow.getHandle(id).signal(abortSignal, { by: opts.by, reason: opts.reason });
        console.log(`abort sent to ${id}; follow the compensation with: runbook watch ${id}`);
      }),
    );

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
    .description('recompute digests and the hash chain; non-zero exit on any mismatch')
    .action(async (dir: string) => {
      const problems = await verifyEvidenceDir(dir);
      if (problems.length) {
        for (const p of problems) console.error(`MISMATCH ${p}`);
        throw new CliError(`${dir}: ${problems.length} problem(s): evidence NOT verified`, 1);
      }
      console.log(`${dir}: digests, hash chain and workflow result agree: evidence verified`);
    });

  return program;
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

/** After a signal: show whether the workflow accepted or ignored it (and why). */
async function report(
  client: Client,
  id: string,
  kind: 'approve' | 'reject',
  by: string,
  before: number,
): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const status = await client.workflow.getHandle(id).query(statusQuery);
    const mine = status.approval.records.slice(before).find((r) => r.kind === kind && r.by === by);
    if (mine) {
      if (!mine.accepted) throw new CliError(`${kind} by ${by} was ignored: ${mine.ignoredBecause}`, 1);
      console.log(
        `${kind} by ${by} accepted (${status.approval.approvedBy.length}/${status.approval.policy?.quorum ?? '?'} approvals)`,
      );
      return;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  console.log(`${kind} sent to ${id}`);
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
