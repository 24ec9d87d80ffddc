import { canonicalJson } from '../shared/canonical-json.js';
import { sha256 } from './digest.js';

/**
 * What a parent run's approved plan covers of a child run: the exact input of a child workflow of a type. The
 * parent lists `{ workflowType, digest }` under its plan's `details.covers`; the child's engine accepts that
 * approval for itself only when its parent (workflowInfo().parent, which nobody can set from outside) is that run,
 * approved and still running, and the digest of its own input is listed (src/activities/runs.ts, parentCovers).
 */
export const coverDigest = (workflowType: string, input: unknown): string =>
  sha256(`runbook-child-cover\n${workflowType}\n${canonicalJson(input)}`);

export interface ChildCover {
  workflowType: string;
  digest: string;
}
