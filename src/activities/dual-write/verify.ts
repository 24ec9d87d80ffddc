import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../shared/constants.js';
import { keyString, sameMeta } from '../stores/fingerprint.js';
import type { DualWriteContext } from './context.js';
import { detect } from './detect.js';
import type { DriftReport, DualWriteRef, FileRef, RepairAction } from './types.js';
import { pagesOf, readLines } from './work-store/index.js';

/** plan lines re-checked per round trip */
const VERIFY_PAGE = 500;

/** What verification heartbeats: the repaired keys checked so far (and those found different), then the full pass. */
interface VerifyCursor {
  phase: 'verify-repaired' | 'verify';
  line?: number;
  repairedChecked: number;
  wrong?: string[];
}

/**
 * Re-checks the repaired keys page by page, then diffs the full range; throws (VerificationFailed) unless zero
 * remain. Read-only. A retry resumes the key check after the last page heartbeated, or, once the full pass had
 * begun, goes straight to it.
 */
export async function verifyRepair(
  c: DualWriteContext,
  ref: DualWriteRef & { plan: FileRef },
): Promise<{ repairedChecked: number; full: DriftReport }> {
  const target = await c.target(ref);
  const work = c.work(target, ref.runKey);
  const ctx = Context.current();
  const prior = ctx.info.heartbeatDetails as Partial<VerifyCursor> | undefined;
  const resumed = prior && Number.isInteger(prior.repairedChecked) ? prior : undefined;
  let repairedChecked = resumed?.repairedChecked ?? 0;
  if (resumed?.phase !== 'verify') {
    const plan = await readLines<RepairAction>(work, ref.plan);
    const from = resumed?.phase === 'verify-repaired' && Number.isInteger(resumed.line) ? resumed.line! : 0;
    repairedChecked = from;
    const wrong: string[] = from ? [...(resumed?.wrong ?? [])] : [];
    await c.withStores(target, { readOnly: true }, async (stores) => {
      for await (const [line, page] of pagesOf(plan, VERIFY_PAGE, from)) {
        const [ga, gb] = await Promise.all([stores.a.get(page), stores.b.get(page)]);
        const ma = new Map(ga.map((o) => [keyString(o), o]));
        const mb = new Map(gb.map((o) => [keyString(o), o]));
        for (const k of page) {
          const x = ma.get(keyString(k));
          const y = mb.get(keyString(k));
          const equal = x && y ? sameMeta(x, y) && Buffer.compare(x.content, y.content) === 0 : !x && !y;
          if (!equal && wrong.length < 20) wrong.push(keyString(k));
          repairedChecked++;
        }
        ctx.heartbeat({
          phase: 'verify-repaired',
          line: line + page.length,
          repairedChecked,
          wrong: [...wrong],
        } satisfies VerifyCursor);
      }
    });
    if (wrong.length)
      throw ApplicationFailure.nonRetryable(
        `repaired objects still differ: ${wrong.join(', ')}`,
        ErrorType.VerificationFailed,
      );
  }
  const full = await detect(c, { ...ref, phase: 'verify' }, { repairedChecked });
  if (full.total > 0) {
    throw ApplicationFailure.create({
      message: `${full.total} differences remain after the repair (see ${full.path})`,
      type: ErrorType.VerificationFailed,
      nonRetryable: true,
      details: [full],
    });
  }
  return { repairedChecked, full };
}
