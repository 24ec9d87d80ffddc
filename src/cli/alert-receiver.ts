import { createServer, type IncomingMessage, type Server } from 'node:http';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { loadEnvironment } from '../activities/environment.js';
import { sha256 } from '../activities/digest.js';
import { triageInputSchema } from '../shared/schemas.js';
import { runbookSearchAttributes } from './input.js';

/** One alert of an Alertmanager webhook payload (version 4). */
interface Alert {
  status?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  startsAt?: string;
  fingerprint?: string;
}

export interface AlertOutcome {
  alert: string;
  /** started: a triage run waiting for approval; duplicate: this firing already has one; ignored: why */
  result: 'started' | 'duplicate' | 'ignored';
  workflowId?: string;
  why?: string;
}

export interface AlertReceiverOptions {
  client: Client;
  taskQueue: string;
  environmentsDir: string;
  /** the environment of alerts without an `environment` label */
  defaultEnvironment?: string;
}

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > 1_000_000) req.destroy(new Error('payload too large'));
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });

/**
 * A firing alert → a triage run that WAITS FOR APPROVAL (never a change on its own): the environment is the alert's
 * `environment` label (or the default), target and symptom come from the environment's `triage.alerts` rules. The
 * workflow id is derived from the alert's fingerprint and start time, so Alertmanager repeating the same firing
 * never starts a second run (a new firing of the same alert is a new run). Resolved alerts are ignored.
 */
export async function handleAlert(o: AlertReceiverOptions, alert: Alert): Promise<AlertOutcome> {
  const labels = alert.labels ?? {};
  const name = labels.alertname ?? '(no alertname)';
  const ignored = (why: string): AlertOutcome => ({ alert: name, result: 'ignored', why });
  if (alert.status !== 'firing') return ignored(`status ${alert.status ?? '(none)'}`);
  const environment = labels.environment ?? o.defaultEnvironment;
  if (!environment) return ignored('no environment label and no --env');
  const env = await loadEnvironment(o.environmentsDir, environment).catch((err: Error) => err);
  if (env instanceof Error) return ignored(env.message);
  const rule = env.config.triage?.alerts.find((r) => Object.entries(r.match).every(([k, v]) => labels[k] === v));
  if (!rule) return ignored(`no triage.alerts rule of ${environment} matches`);
  const firing = alert.fingerprint ?? sha256(JSON.stringify(Object.entries(labels).sort()));
  const workflowId = `triage-alert--${environment}--${sha256(`${firing}\n${alert.startsAt ?? ''}`).slice(0, 16)}`;
  const input = triageInputSchema.parse({
    environment,
    target: rule.target,
    requester: 'alertmanager',
    reason: `alert ${name} firing since ${alert.startsAt ?? '?'}${alert.annotations?.summary ? `: ${alert.annotations.summary}` : ''}`,
    symptoms: [rule.symptom],
  });
  try {
    await o.client.workflow.start('triage', {
      taskQueue: o.taskQueue,
      workflowId,
      args: [input],
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      typedSearchAttributes: runbookSearchAttributes('triage', environment, rule.target),
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { alert: name, result: 'duplicate', workflowId };
    throw err;
  }
  return { alert: name, result: 'started', workflowId };
}

/** POST / (or any path) with Alertmanager's webhook JSON; answers 200 with what became of each alert. */
export function createAlertReceiver(o: AlertReceiverOptions): Server {
  return createServer((req, res) => {
    const reply = (status: number, body: unknown) =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (req.method !== 'POST') return reply(405, { error: 'POST Alertmanager webhook JSON' });
    void readBody(req)
      .then(async (text) => {
        const payload = JSON.parse(text) as { alerts?: Alert[] };
        if (!Array.isArray(payload.alerts)) return reply(400, { error: 'no alerts array' });
        const outcomes: AlertOutcome[] = [];
        for (const alert of payload.alerts) outcomes.push(await handleAlert(o, alert));
        reply(200, { outcomes });
      })
      .catch((err: Error) => reply(err instanceof SyntaxError ? 400 : 500, { error: err.message }));
  });
}
