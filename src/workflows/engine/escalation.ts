import { CancellationScope, isCancellation, log, sleep } from '@temporalio/workflow';
import { parseDuration } from '../../shared/duration.js';
import type { EscalationLevel, EscalationRecord, RunbookStatus } from '../../shared/types.js';
import { engineActivities } from './activities.js';
import { errorMessage, nowIso } from './stop.js';

/**
 * The escalation ladder: while something waits (an approval, a step past its expected duration), durable timers
 * notify level after level until it settles. Each level is recorded in the status and the evidence.
 */
export class EscalationLadder {
  levels: EscalationLevel[] = [];

  constructor(private readonly state: RunbookStatus) {}

  /** Runs `work` while the ladder climbs, starting `startAfter` from now; the ladder stops when `work` settles. */
  async around<T>(reason: string, startAfter: string, work: Promise<T>): Promise<T> {
    if (this.levels.length === 0) return work;
    const scope = new CancellationScope({ cancellable: true });
    const climbing = scope
      .run(async () => {
        const offset = parseDuration(startAfter);
        let elapsed = 0;
        for (const level of [...this.levels].sort((a, b) => a.level - b.level)) {
          const at = offset + parseDuration(level.after);
          if (at > elapsed) await sleep(at - elapsed);
          elapsed = at;
          await this.escalate(level, reason);
        }
      })
      .catch((err: unknown) => {
        if (!isCancellation(err)) log.warn('escalation ladder stopped', { error: errorMessage(err) });
      });
    try {
      return await work;
    } finally {
      scope.cancel();
      await climbing;
    }
  }

  /**
   * Hands over to people now: notifies every level of the ladder at once (each through its channels, naming its
   * contact), recorded like the timed levels. Returns the records (delivered or not, with the error).
   */
  async notifyAll(reason: string, details: string): Promise<EscalationRecord[]> {
    const records: EscalationRecord[] = [];
    for (const level of [...this.levels].sort((a, b) => a.level - b.level)) {
      records.push(await this.escalate(level, reason, details));
    }
    return records;
  }

  private async escalate(level: EscalationLevel, reason: string, details?: string): Promise<EscalationRecord> {
    const s = this.state;
    const entry: EscalationRecord = {
      level: level.level,
      at: nowIso(),
      reason,
      contact: level.contact,
      delivered: false,
    };
    s.escalation.level = level.level;
    s.escalation.history.push(entry);
    const subject = `[L${level.level}] ${s.runbook} on ${s.environment}/${s.target}: ${reason}`;
    const text =
      `${subject}\nworkflow ${s.workflowId}; requested by ${s.requester}; contact: ${level.contact ?? 'n/a'}` +
      (s.planHash ? `\nplan ${s.planHash.slice(0, 12)}: ${s.plan?.summary ?? ''}` : '') +
      (details ? `\n${details}` : '');
    try {
      await engineActivities.notify({ environment: s.environment, subject, text, channels: level.channels });
      entry.delivered = true;
    } catch (err) {
      if (isCancellation(err)) throw err;
      entry.error = errorMessage(err);
    }
    return entry;
  }
}
