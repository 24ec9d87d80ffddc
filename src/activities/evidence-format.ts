import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every level, so a hash does not depend on key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value as Record<string, unknown>)
        .sort()
        .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

export const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

export interface ChainLink {
  kind: 'step' | 'approval' | 'escalation' | 'compensation' | 'outcome';
  record: unknown;
  prevHash: string;
  hash: string;
}

export function chainGenesis(workflowId: string, runId: string): string {
  return sha256(`durable-runbooks:${workflowId}:${runId}`);
}

/** Links records so that changing, dropping or reordering any one changes the head. */
export function buildChain(genesis: string, entries: Array<Pick<ChainLink, 'kind' | 'record'>>): ChainLink[] {
  let prev = genesis;
  return entries.map(({ kind, record }) => {
    const hash = sha256(`${prev}\n${kind}\n${canonicalJson(record)}`);
    const link = { kind, record, prevHash: prev, hash };
    prev = hash;
    return link;
  });
}

/** Returns the problems found; an empty list means the chain is intact and ends at `head`. */
export function verifyChain(genesis: string, chain: ChainLink[], head: string): string[] {
  const problems: string[] = [];
  let prev = genesis;
  chain.forEach((link, i) => {
    if (link.prevHash !== prev) problems.push(`chain[${i}] (${link.kind}): prevHash does not match the previous link`);
    const expected = sha256(`${prev}\n${link.kind}\n${canonicalJson(link.record)}`);
    if (link.hash !== expected) problems.push(`chain[${i}] (${link.kind}): hash mismatch, the record was changed`);
    prev = expected;
  });
  if (prev !== head)
    problems.push(`chain head ${head.slice(0, 16)}… does not match the recomputed ${prev.slice(0, 16)}…`);
  return problems;
}
