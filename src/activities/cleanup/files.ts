import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { canonicalJson } from '../../shared/canonical-json.js';
import { ErrorType } from '../../shared/constants.js';
import { checkedDigest, sha256 } from '../digest.js';
import { writeFileAtomically } from '../files.js';
import type { IdSets } from './select.js';

/**
 * The work files of a cleanup run, private (0600 in 0700) in the target's workDir and named by their digest:
 * the approved id set (`ids-<sha>.json`), the exported rows (`export-<sha>.jsonl`, the undo's input) and the
 * commit record of the delete transaction (`commit-<sha>.txid`).
 */

export interface ApprovedSet {
  /** when the selection was made: `within` predicates count back from here, in the run and its re-checks */
  asOf: string;
  tables: IdSets;
}

export function idSetBytes(set: ApprovedSet): { bytes: string; digest: string } {
  const bytes = `${canonicalJson(set)}\n`;
  return { bytes, digest: sha256(bytes) };
}

async function readByDigest(dir: string, name: string, digest: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(join(dir, name), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      // another worker host may have it: retryable
      throw ApplicationFailure.retryable(`${what} ${name} is not in ${dir} on this worker`, ErrorType.WorkFileMissing);
    throw err;
  }
  if (sha256(text) !== digest)
    throw ApplicationFailure.nonRetryable(
      `${what} ${join(dir, name)} does not have the digest the run recorded`,
      ErrorType.EvidenceMismatch,
    );
  return text;
}

export const idsFile = (digest: string) => `ids-${checkedDigest(digest, 'idsDigest')}.json`;
export const exportFile = (digest: string) => `export-${checkedDigest(digest, 'exportDigest')}.jsonl`;
/** per run and export: a later run of the same rows never takes an earlier run's commit for its own */
export const commitFile = (runId: string, exportDigest: string) =>
  `commit-${sha256(`${runId}\n${checkedDigest(exportDigest, 'exportDigest')}`)}.txid`;

export async function writeIdSet(dir: string, set: ApprovedSet): Promise<string> {
  const { bytes, digest } = idSetBytes(set);
  await writeFileAtomically(join(dir, idsFile(digest)), bytes);
  return digest;
}

export async function readIdSet(dir: string, digest: string): Promise<ApprovedSet> {
  return JSON.parse(await readByDigest(dir, idsFile(digest), digest, 'the approved id set')) as ApprovedSet;
}

/**
 * Exported rows: one line per row, `<table>\t<row_to_json text>`, kept as Postgres wrote them (never re-encoded,
 * so numbers, timestamps and bytea come back exactly).
 */
export type ExportedRows = Record<string, string[]>;

export function exportBytes(rows: ExportedRows): { bytes: string; digest: string } {
  const bytes = Object.entries(rows)
    .flatMap(([table, list]) => list.map((row) => `${table}\t${row}\n`))
    .join('');
  return { bytes, digest: sha256(bytes) };
}

export async function writeExport(dir: string, rows: ExportedRows): Promise<{ digest: string; bytes: number }> {
  const { bytes, digest } = exportBytes(rows);
  await writeFileAtomically(join(dir, exportFile(digest)), bytes);
  return { digest, bytes: Buffer.byteLength(bytes) };
}

export async function readExport(dir: string, digest: string): Promise<ExportedRows> {
  const text = await readByDigest(dir, exportFile(digest), digest, 'the export');
  const rows: ExportedRows = {};
  for (const line of text.split('\n')) {
    if (!line) continue;
    const tab = line.indexOf('\t');
    (rows[line.slice(0, tab)] ??= []).push(line.slice(tab + 1));
  }
  return rows;
}

/** The delete transaction's id, written before it commits: no file, no commit by this run. */
export async function writeCommitRecord(dir: string, name: string, xid: string): Promise<void> {
  await writeFileAtomically(join(dir, name), `${xid}\n`);
}

export async function readCommitRecord(dir: string, name: string): Promise<string | undefined> {
  try {
    const xid = (await readFile(join(dir, name), 'utf8')).trim();
    return /^\d+$/.test(xid) ? xid : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
