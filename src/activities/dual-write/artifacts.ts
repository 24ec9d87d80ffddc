import type { DualWriteContext } from './context.js';
import type { DualWriteRef, FileRef } from './types.js';

/** The seed's artifacts: dual_write_rollback_YYYYMMDD.json and dual_write_verification_YYYYMMDD.json. */
export async function writeDualWriteArtifacts(
  c: DualWriteContext,
  ref: DualWriteRef & { day: string; rollback: Record<string, unknown>; verification: Record<string, unknown> },
): Promise<{ rollback: FileRef; verification: FileRef }> {
  const work = c.work(await c.target(ref), ref.runKey);
  const write = (name: string, doc: Record<string, unknown>) =>
    work.writeText(`assurance/${name}_${ref.day}.json`, `${JSON.stringify(doc, null, 2)}\n`);
  return {
    rollback: await write('dual_write_rollback', ref.rollback),
    verification: await write('dual_write_verification', ref.verification),
  };
}
