import { Context } from '@temporalio/activity';
import type { FileRef } from './types.js';
import { pagesOf, readLines, type AppendCursor, type WorkStore, type WrittenFile } from './work-store/index.js';

/** What a pass heartbeats after each page: the input lines done, where its output stands, its running totals. */
export interface PassCursor<S> {
  phase: string;
  line: number;
  out: AppendCursor;
  state: S;
}

const isCursor = (d: unknown, phase: string): d is PassCursor<unknown> => {
  const c = d as Partial<PassCursor<unknown>> | undefined;
  return (
    c?.phase === phase &&
    Number.isInteger(c.line) &&
    c.line! >= 0 &&
    typeof c.out?.staging === 'string' &&
    Number.isInteger(c.out.bytes) &&
    Number.isInteger(c.out.lines) &&
    Number.isInteger(c.out.appends)
  );
};

/**
 * One pass over a work file that writes another one, page by page: after each page the output is checkpointed
 * (made durable) and the heartbeat carries `{ phase, line, out, state }`. A retry goes on after the last page
 * its predecessor heartbeated, with its output and running totals (`state`, plain JSON), when the output's
 * staging is reachable from this worker (the Postgres work store, or the same host); otherwise it starts over.
 */
export async function resumablePass<In, S>(o: {
  work: WorkStore;
  phase: string;
  input: FileRef;
  output: string;
  pageSize: number;
  initial: () => S;
  /** the output rows of a page of input rows, updating `state` */
  page: (rows: In[], state: S) => Promise<unknown[]> | unknown[];
}): Promise<{ file: WrittenFile; state: S; resumedAt?: number }> {
  const ctx = Context.current();
  const input = await readLines<In>(o.work, o.input);
  const prior = ctx.info.heartbeatDetails as unknown;
  const resumed = isCursor(prior, o.phase) ? await o.work.resume(o.output, prior.out) : undefined;
  const appender = resumed ?? (await o.work.appender(o.output));
  const state = resumed ? structuredClone((prior as PassCursor<S>).state) : o.initial();
  const from = resumed ? (prior as PassCursor<S>).line : 0;
  for await (const [start, rows] of pagesOf(input, o.pageSize, from)) {
    for (const row of await o.page(rows, state)) await appender.write(row);
    const out = await appender.checkpoint();
    // a copy: the SDK may send the details after the next page changed `state`
    ctx.heartbeat(structuredClone({ phase: o.phase, line: start + rows.length, out, state }) satisfies PassCursor<S>);
  }
  return { file: await appender.finish(), state, ...(from ? { resumedAt: from } : {}) };
}
