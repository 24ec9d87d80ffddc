import { log } from '@temporalio/workflow';
import type { CompensationRecord } from '../../shared/types.js';
import { errorMessage, nowIso } from './stop.js';

interface Undo {
  step: string;
  undo: () => Promise<unknown>;
}

/**
 * The undos a run registered, run in reverse on any unsuccessful end. The caller runs them in a non-cancellable
 * scope; each undo's activities retry by their own policy, and an undo that still fails is reported (outcome
 * compensation_failed), never swallowed.
 */
export class Compensations {
  private readonly undos: Undo[] = [];

  get size(): number {
    return this.undos.length;
  }

  register(step: string, undo: () => Promise<unknown>): void {
    this.undos.push({ step, undo });
  }

  /**
   * Releases every undo without running it, each recorded as `kept` with the reason: the run hands over a state
   * on purpose (nothing is swallowed: the evidence names each change left in place and why).
   */
  keepAll(reason: string, record: (entry: CompensationRecord) => void): void {
    const at = nowIso();
    for (const { step } of this.undos.splice(0).reverse()) {
      record({ step, status: 'kept', startedAt: at, endedAt: at, reason });
    }
  }

  /** Runs every undo, newest first; reports each through `record`. Returns false when any undo failed. */
  async runAll(hooks: { onStart(step: string): void; record(entry: CompensationRecord): void }): Promise<boolean> {
    let allUndone = true;
    for (const { step, undo } of [...this.undos].reverse()) {
      const startedAt = nowIso();
      hooks.onStart(step);
      try {
        await undo();
        hooks.record({ step, status: 'succeeded', startedAt, endedAt: nowIso() });
      } catch (err) {
        allUndone = false;
        const error = errorMessage(err);
        log.error('compensation failed', { step, error });
        hooks.record({ step, status: 'failed', startedAt, endedAt: nowIso(), error });
      }
    }
    return allUndone;
  }
}
