import { canonicalJson } from '../../shared/canonical-json.js';
import { sha256 } from '../digest.js';

/** What a link of the evidence chain holds: one fact of the run. */
export const CHAIN_KINDS = [
  'run',
  'plan',
  'step',
  'approval',
  'escalation',
  'compensation',
  'lock',
  'phases',
  'abort',
  'extra',
  'outcome',
  /** per-stage approvals (absent from runs with one gate) */
  'stage',
] as const;
export type ChainKind = (typeof CHAIN_KINDS)[number];

export interface ChainLink {
  kind: ChainKind;
  record: unknown;
  prevHash: string;
  hash: string;
}

export function chainGenesis(workflowId: string, runId: string): string {
  return sha256(`durable-runbooks:${workflowId}:${runId}`);
}

const linkHash = (prev: string, kind: string, record: unknown): string =>
  sha256(`${prev}\n${kind}\n${canonicalJson(record)}`);

/** Links records so that changing, dropping or reordering any one changes the head. */
export function buildChain(genesis: string, entries: Array<Pick<ChainLink, 'kind' | 'record'>>): ChainLink[] {
  let prev = genesis;
  return entries.map(({ kind, record }) => {
    const hash = linkHash(prev, kind, record);
    const link = { kind, record, prevHash: prev, hash };
    prev = hash;
    return link;
  });
}

/** Returns the problems found; an empty list means the chain is intact and ends at `head`. */
export function verifyChain(genesis: string, chain: ChainLink[], head: string | undefined): string[] {
  const problems: string[] = [];
  if (!Array.isArray(chain) || chain.length === 0) return ['chain: missing or empty'];
  if (typeof head !== 'string' || !head) problems.push('chainHead: missing');
  let prev = genesis;
  chain.forEach((link, i) => {
    if (!CHAIN_KINDS.includes(link.kind)) problems.push(`chain[${i}]: unknown kind ${JSON.stringify(link.kind)}`);
    if (link.prevHash !== prev) problems.push(`chain[${i}] (${link.kind}): prevHash does not match the previous link`);
    const expected = linkHash(prev, link.kind, link.record);
    if (link.hash !== expected) problems.push(`chain[${i}] (${link.kind}): hash mismatch, the record was changed`);
    prev = expected;
  });
  if (head && prev !== head) {
    problems.push(`chain head ${head.slice(0, 16)}… does not match the recomputed ${prev.slice(0, 16)}…`);
  }
  return problems;
}
