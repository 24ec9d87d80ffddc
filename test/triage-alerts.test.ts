import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAlertReceiver, type AlertOutcome } from '../src/cli/alert-receiver.js';
import { rejectSignal } from '../src/shared/messages.js';
import { Harness } from './support/harness.js';
import { triageTarget } from './support/triage.js';
import { freePort } from '../src/dev/ports.js';

const h = new Harness();
beforeAll(() => h.start());
afterAll(() => h.close());

describe('runbook alert-receiver: Alertmanager webhook → a triage run waiting for approval', () => {
  it('a firing alert starts one triage run that waits; a repeat is a duplicate; resolved is ignored', async () => {
    const t = await triageTarget(h, {
      alerts: [{ match: { alertname: 'DualWriteErrors' }, target: 'web', symptom: 'errors-500' }],
    });
    const server = createAlertReceiver({
      client: h.client,
      taskQueue: h.taskQueue,
      environmentsDir: h.environmentsDir,
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    h.onClose(() => new Promise<void>((r) => server.close(() => r())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const alert = (status: string) => ({
      status,
      labels: { alertname: 'DualWriteErrors', environment: t.envName, severity: 'critical' },
      annotations: { summary: '5xx above 5%' },
      startsAt: '2026-11-26T14:02:00Z',
      fingerprint: 'a1b2c3d4e5f60718',
    });
    // Alertmanager's webhook payload (version 4)
    const post = async (alerts: unknown[]) => {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ version: '4', status: 'firing', receiver: 'runbooks', groupLabels: {}, alerts }),
      });
      expect(response.status).toBe(200);
      return ((await response.json()) as { outcomes: AlertOutcome[] }).outcomes;
    };

    const [first] = await post([alert('firing')]);
    expect(first).toMatchObject({ alert: 'DualWriteErrors', result: 'started' });
    const handle = h.client.workflow.getHandle(first!.workflowId!);
    const waiting = await h.waitForApproval(handle);
    expect(waiting.requester).toBe('alertmanager');
    expect(waiting.reason).toBe('alert DualWriteErrors firing since 2026-11-26T14:02:00Z: 5xx above 5%');
    expect(waiting.plan!.summary).toMatch(
      /^errors-500 \(IMMEDIATE\) → run 1\/2: feature-flag-rollback disable-strict-mode/,
    );
    // nothing changed on its own
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);

    expect(await post([alert('firing')])).toEqual([
      { alert: 'DualWriteErrors', result: 'duplicate', workflowId: first!.workflowId },
    ]);
    expect(
      await post([alert('resolved'), { ...alert('firing'), labels: { alertname: 'Other', environment: t.envName } }]),
    ).toEqual([
      { alert: 'DualWriteErrors', result: 'ignored', why: 'status resolved' },
      { alert: 'Other', result: 'ignored', why: `no triage.alerts rule of ${t.envName} matches` },
    ]);
    const runs: string[] = [];
    for await (const w of h.client.workflow.list({ query: `WorkflowId = '${first!.workflowId}'` })) runs.push(w.runId);
    expect(runs).toHaveLength(1);

    await handle.signal(rejectSignal, { by: 'alice', planHash: waiting.planHash!, reason: 'test over' });
    await handle.result().catch(() => undefined);
    expect(readFileSync(t.envFile, 'utf8')).toBe(t.initialFlags);
  });

  it('the CLI: runbook alert-receiver --port N --env E listens and starts the run', async () => {
    const t = await triageTarget(h, {
      alerts: [{ match: { alertname: 'Latency' }, target: 'web', symptom: 'latency-2x' }],
    });
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [join(process.cwd(), 'bin', 'runbook.js'), 'alert-receiver', '--port', String(port), '--env', t.envName],
      { env: h.env(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    h.onClose(async () => {
      child.kill('SIGTERM');
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
      child.on('exit', (code) => reject(new Error(`alert-receiver exited ${code}`)));
    });
    const response = await fetch(`http://127.0.0.1:${port}/`, {
      method: 'POST',
      body: JSON.stringify({
        version: '4',
        alerts: [{ status: 'firing', labels: { alertname: 'Latency' }, fingerprint: 'f00d' }],
      }),
    });
    const { outcomes } = (await response.json()) as { outcomes: AlertOutcome[] };
    expect(outcomes).toMatchObject([{ alert: 'Latency', result: 'started' }]);
    const handle = h.client.workflow.getHandle(outcomes[0]!.workflowId!);
    const waiting = await h.waitForApproval(handle);
    expect(waiting.plan!.summary).toMatch(
      /^latency-2x \(HIGH\) → run 1\/1: feature-flag-rollback disable-dual-write on web;/,
    );
    await handle.signal(rejectSignal, { by: 'alice', planHash: waiting.planHash!, reason: 'test over' });
    await handle.result().catch(() => undefined);
  });
});
