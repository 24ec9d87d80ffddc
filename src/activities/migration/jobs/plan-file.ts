import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../../shared/constants.js';
import type { ReplayKind } from '../../../shared/schemas.js';
import { checkedDigest, sha256 } from '../../digest.js';
import { writeFileAtomically } from '../../files.js';
import type { JobState } from '../types.js';

/** Why a job is in a replay plan: a detected kind, or named by the input (`jobs`). */
export type PlanKind = ReplayKind | 'requested';

/** One line of a plan file: the job and the state it is requeued from. */
export interface PlanEntry {
  id: string;
  kind: PlanKind;
  from: JobState;
  /** the job's file name when it was planned (the spool: the file a requeue renames) */
  name?: string;
}

/** A plan file as history knows it: where it is and its digest (the list itself stays out of history). */
export interface PlanFileRef {
  path: string;
  sha256: string;
  total: number;
}

export const planText = (entries: PlanEntry[]): string =>
  entries
    .map((e) => `${JSON.stringify({ id: e.id, kind: e.kind, from: e.from, ...(e.name ? { name: e.name } : {}) })}\n`)
    .join('');

/** Writes the plan as `<workDir>/replay-plans/<sha256>.jsonl` (content-addressed: a retry writes the same file). */
export async function writePlanFile(workDir: string, entries: PlanEntry[]): Promise<PlanFileRef> {
  const text = planText(entries);
  const digest = sha256(text);
  const path = join(workDir, 'replay-plans', `${digest}.jsonl`);
  await writeFileAtomically(path, text);
  return { path, sha256: digest, total: entries.length };
}

const cache = new Map<string, PlanEntry[]>();

/**
 * The plan's entries, read once per worker and checked against the digest history holds (a plan file changed
 * since it was approved is EvidenceMismatch; one not on this host is retryable: another worker may have it).
 */
export async function readPlanFile(ref: { path: string; sha256: string }): Promise<PlanEntry[]> {
  const digest = checkedDigest(ref.sha256, 'replay plan');
  const hit = cache.get(digest);
  if (hit) return hit;
  let text: string;
  try {
    text = await readFile(ref.path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw ApplicationFailure.retryable(
        `replay plan ${ref.path} is not on this worker's host`,
        ErrorType.WorkFileMissing,
      );
    throw err;
  }
  if (sha256(text) !== digest)
    throw ApplicationFailure.nonRetryable(
      `replay plan ${ref.path} does not have the approved digest ${digest}`,
      ErrorType.EvidenceMismatch,
    );
  const entries = text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as PlanEntry);
  if (cache.size >= 4) cache.delete(cache.keys().next().value!);
  cache.set(digest, entries);
  return entries;
}
