import type { DriftEntry } from '../stores/diff.js';
import type { DualWriteRollbackParams } from '../../shared/schemas.js';
import type { RepairAction, Side } from './types.js';

/** The decision for one differing object under a policy (see README: direction policies). */
export function decide(entry: DriftEntry, policy: DualWriteRollbackParams['policy'], tieBreaker: Side): RepairAction {
  let winner: Side;
  if (policy === 'postgres-authoritative') winner = 'a';
  else if (policy === 'store-authoritative') winner = 'b';
  else if (!entry.a) winner = 'b';
  else if (!entry.b) winner = 'a';
  else if (entry.a.updatedAt === entry.b.updatedAt) winner = tieBreaker;
  else winner = entry.a.updatedAt > entry.b.updatedAt ? 'a' : 'b';
  const loser: Side = winner === 'a' ? 'b' : 'a';
  const source = entry[winner];
  const overwritten = entry[loser];
  return {
    objectId: entry.objectId,
    version: entry.version,
    class: entry.class,
    action: source ? 'copy' : 'delete',
    from: winner,
    to: loser,
    sha256: source?.sha256,
    olderOverwrite:
      Boolean(source && overwritten && overwritten.updatedAt > source.updatedAt) || Boolean(!source && overwritten),
  };
}
