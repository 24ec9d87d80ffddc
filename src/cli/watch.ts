import { SingleBar, Presets } from 'cli-progress';
import type { Client } from '@temporalio/client';
import { currentGate } from '../shared/approval-stages.js';
import { statusQuery } from '../shared/messages.js';
import type { RunbookStatus } from '../shared/types.js';
import { exitCodeFor, finished } from './client.js';
import { runningChildStatus } from './errors.js';
import { childWaitLines } from './format.js';

const DONE = new Set(['succeeded', 'failed', 'skipped', 'compensated']);

/** Follows a run: a progress bar on a terminal, one line per step change otherwise; returns the exit code. */
export async function watchRun(client: Client, id: string): Promise<number> {
  const handle = client.workflow.getHandle(id);
  const tty = Boolean(process.stdout.isTTY);
  const bar = tty
    ? new SingleBar({ format: '{bar} {value}/{total} steps | {step}', hideCursor: true }, Presets.shades_classic)
    : undefined;
  const seen = new Map<string, string>();
  let started = false;
  const end = finished(handle);
  let closed = false;
  void end.then(
    () => (closed = true),
    () => (closed = true),
  );
  const render = (status: RunbookStatus): void => {
    const done = status.steps.filter((s) => DONE.has(s.status)).length;
    const gate = currentGate(status);
    const label = status.approval.waiting
      ? `waiting for approval${gate.stage ? ` of "${gate.stage}"` : ''} (${gate.approvedBy.length}/${gate.policy?.quorum})`
      : (status.currentStep ?? status.phase);
    if (bar) {
      if (!started) bar.start(status.steps.length, done, { step: label });
      bar.setTotal(status.steps.length);
      bar.update(done, { step: label });
    } else {
      for (const step of status.steps) {
        if (seen.get(step.name) !== step.status && step.status !== 'pending') {
          console.log(
            `${new Date().toISOString()} ${step.name}: ${step.status}${step.result ? ` (${step.result})` : ''}${step.error ? ` — ${step.error}` : ''}`,
          );
        }
        seen.set(step.name, step.status);
      }
    }
    started = true;
  };
  const waitsShown = new Set<string>();
  /** A chain (triage) waiting on a child's own approval: status's block, once per child and gate. */
  const showChildWait = async (status: RunbookStatus): Promise<void> => {
    const child = await runningChildStatus(client, status);
    if (!child?.approval.waiting) return;
    const gate = currentGate(child);
    const key = `${child.workflowId} ${gate.stage ?? ''} ${gate.planHash ?? ''}`;
    if (waitsShown.has(key)) return;
    waitsShown.add(key);
    if (bar && started) {
      bar.stop(); // the block goes below the bar; the next render starts a new one
      started = false;
    }
    console.log(childWaitLines(status, child).join('\n'));
  };
  const poll = async (): Promise<void> => {
    const status = await handle.query(statusQuery).catch(() => undefined);
    if (!status) return;
    render(status);
    await showChildWait(status);
  };
  while (!closed) {
    await poll();
    await Promise.race([end, new Promise((r) => setTimeout(r, 1000))]);
  }
  await poll();
  bar?.stop();
  const { outcome, result, message } = await end;
  console.log(`outcome: ${outcome.toUpperCase()}${message && outcome !== 'succeeded' ? ` — ${message}` : ''}`);
  if (result?.evidence) console.log(`evidence: ${result.evidence.path} (sha256 ${result.evidence.sha256})`);
  return exitCodeFor(outcome);
}
