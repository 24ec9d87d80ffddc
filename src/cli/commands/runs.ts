import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { ApplicationFailure, SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { ErrorType } from '../../shared/constants.js';
import { EnvironmentError, approvalPolicyOf, loadTarget } from '../../activities/environment.js';
import { lockStatusQuery, targetLockId } from '../../shared/messages.js';
import { RUNBOOKS, defaultWorkflowId } from '../../shared/runbooks.js';
import { describeZodError } from '../../shared/schemas.js';
import { tightenApproval, tightenDuration } from '../../shared/input.js';
import { loadConfig } from '../../worker/config.js';
import { CliError, queryStatus, withClient } from '../errors.js';
import { formatStatus } from '../format.js';
import { watchRun } from '../watch.js';

const keys = {
  RunbookName: defineSearchAttributeKey('RunbookName', SearchAttributeType.KEYWORD),
  Environment: defineSearchAttributeKey('Environment', SearchAttributeType.KEYWORD),
  Target: defineSearchAttributeKey('Target', SearchAttributeType.KEYWORD),
};

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

/** Who holds the target: its lock workflow (every start path takes it), or a running run of the same runbook. */
async function holderOf(
  client: Client,
  runbook: string,
  environment: string,
  target: string,
): Promise<string | undefined> {
  const lock = await client.workflow
    .getHandle(targetLockId(environment, target))
    .query(lockStatusQuery)
    .catch(() => undefined);
  if (lock?.holder) return `workflow "${lock.holder.workflowId}" (${lock.holder.runbook}) holds it`;
  const query = `RunbookName = '${runbook}' AND Environment = '${environment}' AND Target = '${target}' AND ExecutionStatus = 'Running'`;
  for await (const running of client.workflow.list({ query })) {
    return `workflow "${running.workflowId}" is already running ${runbook} on it`;
  }
  return undefined;
}

type StartOptions = {
  env: string;
  target?: string;
  input?: string;
  requester?: string;
  reason?: string;
  dryRun?: boolean;
  id?: string;
  wait?: boolean;
};

export function registerRunCommands(program: Command): void {
  program
    .command('list')
    .description('list the runbooks this CLI can start')
    .action(() => {
      for (const [name, def] of Object.entries(RUNBOOKS)) {
        console.log(`${name.padEnd(26)} ${def.workflowType.padEnd(22)} ${def.description}`);
      }
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
    .action(async (name: string, opts: StartOptions) => {
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
        const t = await loadTarget(loadConfig().environmentsDir, environment, target);
        // the workflow checks this too; here the operator learns it before anything starts
        tightenApproval(approvalPolicyOf(t), parsed.data.approval);
        tightenDuration('lockWait', t.config.lockWait, parsed.data.lockWait);
      } catch (err) {
        if (err instanceof EnvironmentError) throw new CliError(`invalid environment: ${err.message}`);
        if (err instanceof ApplicationFailure && err.type === ErrorType.InvalidInput) throw new CliError(err.message);
        throw err;
      }
      const workflowId = opts.id ?? defaultWorkflowId(name, environment, target);
      await withClient(async (client) => {
        const holder = parsed.data.dryRun ? undefined : await holderOf(client, name, environment, target);
        if (holder) throw new CliError(`target ${environment}/${target} is busy: ${holder}`, 1);
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
    });

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
}
