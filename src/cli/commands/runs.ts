import type { Command } from 'commander';
import { userInfo } from 'node:os';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { lockStatusQuery, targetLockId } from '../../shared/messages.js';
import { RUNBOOKS, defaultWorkflowId } from '../../shared/runbooks.js';
import { loadConfig } from '../../worker/config.js';
import { CliError, queryStatus, runningChildStatus, withClient } from '../errors.js';
import { formatStatus } from '../format.js';
import { parseInput, runbookSearchAttributes, validateRunbookInput } from '../input.js';
import { watchRun } from '../watch.js';

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

export type StartOptions = {
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
    .action((name: string, opts: StartOptions) => startRunbook(name, opts));

  program
    .command('status <id>')
    .description('show steps, plan, approvals, escalation and outcome')
    .option('--json', 'print the raw status JSON')
    .action(async (id: string, opts: { json?: boolean }) =>
      withClient(async (client) => {
        const status = await queryStatus(client, id);
        if (opts.json) return console.log(JSON.stringify(status, null, 2));
        // a chain waiting on a child (triage): what the child waits for, e.g. its own approval of its own plan
        console.log(formatStatus(status, await runningChildStatus(client, status)));
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

/** `runbook start` (and commands that start one runbook with fields of their own, like `runbook triage`). */
export async function startRunbook(
  name: string,
  opts: StartOptions,
  fields: Record<string, unknown> = {},
): Promise<void> {
  const def = RUNBOOKS[name];
  if (!def) throw new CliError(`unknown runbook "${name}" (known: ${Object.keys(RUNBOOKS).join(', ')})`);
  const raw = { ...(await parseInput(opts.input)), ...fields };
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
  const { environment, target, dryRun } = await validateRunbookInput(def, input, loadConfig().environmentsDir);
  const workflowId = opts.id ?? defaultWorkflowId(name, environment, target);
  await withClient(async (client) => {
    const holder = dryRun ? undefined : await holderOf(client, name, environment, target);
    if (holder) throw new CliError(`target ${environment}/${target} is busy: ${holder}`, 1);
    let handle;
    try {
      handle = await client.workflow.start(def.workflowType, {
        taskQueue: loadConfig().taskQueue,
        workflowId,
        args: [input],
        workflowIdConflictPolicy: 'FAIL',
        typedSearchAttributes: runbookSearchAttributes(name, environment, target),
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        throw new CliError(`target ${environment}/${target} is busy: workflow "${workflowId}" is already running`, 1);
      }
      throw err;
    }
    console.log(`started ${name} on ${environment}/${target}`);
    console.log(`workflow id: ${handle.workflowId}`);
    console.log(`run id:      ${handle.firstExecutionRunId}`);
    if (opts.wait) process.exitCode = await watchRun(client, handle.workflowId);
  });
}
