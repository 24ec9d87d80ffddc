import { readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { canonicalJson } from '../../shared/canonical-json.js';
import { ErrorType } from '../../shared/constants.js';
import { PUBLIC_KEY_PATTERN } from '../../shared/decisions.js';
import { BACKUP_FILE_PATTERN } from '../../shared/schemas.js';
import { sha256File } from '../digest.js';
import { ensurePrivateDir, writeFileAtomically } from '../files.js';
import { signText, verifyText, type KeyPair } from '../keys.js';
import { inThread, type StreamDigests } from './thread.js';

// Backup files of a SQLite target: `<prefix>_<UTC time>.db.gz` with a signed manifest beside it,
// `<file>.manifest.json`. A backup without a manifest is not verified and is never restored.

export const BACKUP_FORMAT = 'sqlite-backup@1';
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}_\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}(-[a-z0-9]{1,16})?$/;
/** what an operator may name: a backup file in the backups directory, nothing with a path in it */
export const BACKUP_FILE = BACKUP_FILE_PATTERN;
export const MANIFEST_SUFFIX = '.manifest.json';

export const backupInvalid = (message: string) => ApplicationFailure.nonRetryable(message, ErrorType.BackupInvalid);

const digestSchema = z.string().regex(/^[0-9a-f]{64}$/);
export const manifestSchema = z.strictObject({
  format: z.literal(BACKUP_FORMAT),
  name: z.string().regex(NAME),
  file: z.string().regex(BACKUP_FILE),
  database: z.string(),
  createdAt: z.iso.datetime(),
  method: z.enum(['backup-api', 'vacuum-into', 'pre-rollback']),
  raw: z.strictObject({ bytes: z.number().int().min(0), sha256: digestSchema }),
  compressed: z.strictObject({ bytes: z.number().int().min(0), sha256: digestSchema }),
  pageSize: z.number().int(),
  pageCount: z.number().int(),
  counts: z.strictObject({ tables: z.number(), indexes: z.number(), triggers: z.number(), views: z.number() }),
  rows: z.record(z.string(), z.number().nullable()),
  schemaDigest: digestSchema,
  verified: z.strictObject({ at: z.iso.datetime(), integrity: z.literal('ok'), foreignKeyViolations: z.number() }),
  /** the run that took it */
  workflowId: z.string().optional(),
  runId: z.string().optional(),
  signature: z.strictObject({ publicKey: z.string().regex(PUBLIC_KEY_PATTERN), value: z.string() }).optional(),
});
export type BackupManifest = z.infer<typeof manifestSchema>;

export const manifestPath = (dir: string, file: string) => join(dir, `${file}${MANIFEST_SUFFIX}`);

/** What every signed backup manifest has (SQLite's and Postgres's): the file it describes, when, the signature. */
export interface SignedManifest {
  file: string;
  createdAt: string;
  signature?: { publicKey: string; value: string };
}

/** A kind of backup file: its name pattern, its manifest's schema, and the stored file's size and digest. */
export interface BackupKind<M extends SignedManifest> {
  file: RegExp;
  schema: z.ZodType<M>;
  stored(m: M): { bytes: number; sha256: string };
}

export const SQLITE_BACKUPS: BackupKind<BackupManifest> = {
  file: BACKUP_FILE,
  schema: manifestSchema,
  stored: (m) => m.compressed,
};

/** Writes the manifest last, signed by the worker: its presence is what makes a backup verified. */
export async function writeManifest<M extends SignedManifest>(dir: string, manifest: M, key: KeyPair): Promise<M> {
  const { signature: _drop, ...body } = manifest;
  const signed = {
    ...body,
    signature: { publicKey: key.publicKey, value: signText(key, canonicalJson(body)) },
  } as unknown as M;
  await writeFileAtomically(manifestPath(dir, manifest.file), `${JSON.stringify(signed, null, 2)}\n`);
  return signed;
}

export interface ListedBackup<M extends SignedManifest = BackupManifest> {
  file: string;
  path: string;
  bytes: number;
  modifiedAt: string;
  manifest?: M;
  /** why this backup cannot be restored as it is (no manifest, unreadable manifest, size differs, untrusted) */
  problem?: string;
}

/**
 * Every backup of `prefix` in `dir`, newest first: by the time in the name (seconds), then by the manifest's
 * `createdAt` (milliseconds: two backups taken in the same second), then by name. Cheap: reads manifests and sizes;
 * the digest is checked by verifyBackupDigest before a restore uses one.
 */
export async function listBackups<M extends SignedManifest = BackupManifest>(
  dir: string,
  prefix: string,
  trustedKeys: string[],
  kind: BackupKind<M> = SQLITE_BACKUPS as unknown as BackupKind<M>,
): Promise<ListedBackup<M>[]> {
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  const files = names.filter((n) => kind.file.test(n) && n.startsWith(`${prefix}_`));
  const out: ListedBackup<M>[] = [];
  for (const file of files) {
    const path = join(dir, file);
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile()) continue;
    const entry: ListedBackup<M> = { file, path, bytes: st.size, modifiedAt: st.mtime.toISOString() };
    out.push(entry);
    const text = await readFile(manifestPath(dir, file), 'utf8').catch(() => undefined);
    if (text === undefined) {
      entry.problem = 'no manifest (not verified)';
      continue;
    }
    let parsed: ReturnType<typeof kind.schema.safeParse>;
    try {
      parsed = kind.schema.safeParse(JSON.parse(text));
    } catch {
      entry.problem = 'manifest is not JSON';
      continue;
    }
    if (!parsed.success) {
      entry.problem = `manifest invalid: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`;
      continue;
    }
    const manifest = parsed.data;
    entry.manifest = manifest;
    if (manifest.file !== file) entry.problem = `manifest names ${manifest.file}`;
    else if (kind.stored(manifest).bytes !== st.size)
      entry.problem = `size ${st.size} differs from the manifest's ${kind.stored(manifest).bytes}`;
    else entry.problem = signatureProblem(manifest, trustedKeys);
  }
  const stamp = (b: ListedBackup<M>) => b.file.slice(prefix.length + 1, prefix.length + 20);
  const newerFirst = (a: string, b: string) => (a < b ? 1 : a > b ? -1 : 0);
  return out.sort(
    (a, b) =>
      newerFirst(stamp(a), stamp(b)) ||
      newerFirst(a.manifest?.createdAt ?? '', b.manifest?.createdAt ?? '') ||
      newerFirst(a.file, b.file),
  );
}

/** undefined when the manifest is signed by a trusted worker key and the signature holds */
export function signatureProblem(manifest: SignedManifest, trustedKeys: string[]): string | undefined {
  const { signature, ...body } = manifest;
  if (!signature) return 'manifest is not signed';
  if (!trustedKeys.includes(signature.publicKey)) return 'manifest signed by an untrusted key';
  if (!verifyText(signature.publicKey, canonicalJson(body), signature.value))
    return 'manifest signature does not verify';
  return undefined;
}

/** The file's sha256 against its manifest; BackupInvalid when they differ. */
export async function verifyBackupDigest<M extends SignedManifest = BackupManifest>(
  backup: ListedBackup<M>,
  kind: BackupKind<M> = SQLITE_BACKUPS as unknown as BackupKind<M>,
): Promise<void> {
  if (!backup.manifest) throw backupInvalid(`${backup.file}: ${backup.problem ?? 'no manifest'}`);
  const actual = await sha256File(backup.path);
  const expected = kind.stored(backup.manifest).sha256;
  if (actual !== expected)
    throw backupInvalid(
      `${backup.file}: sha256 ${actual.slice(0, 16)}… does not match its manifest (${expected.slice(0, 16)}…)`,
    );
}

export type { StreamDigests };

/** gzip `src` into `dest` (through `dest`.partial, renamed when complete), hashing both sides, on a worker thread. */
export async function gzipFile(
  src: string,
  dest: string,
  level: number,
  onProgress: (rawBytes: number) => void = () => {},
): Promise<StreamDigests> {
  await ensurePrivateDir(join(dest, '..'));
  const partial = `${dest}.partial`;
  const digests = await inThread('gzip', { src, dest: partial, level }, onProgress);
  await rename(partial, dest);
  return digests;
}

/** gunzip `src` into `dest` (through `dest`.partial), hashing both sides, on a worker thread. A damaged gzip stream rejects. */
export async function gunzipFile(
  src: string,
  dest: string,
  onProgress: (rawBytes: number) => void = () => {},
): Promise<StreamDigests> {
  await ensurePrivateDir(join(dest, '..'));
  const partial = `${dest}.partial`;
  let digests: StreamDigests;
  try {
    digests = await inThread('gunzip', { src, dest: partial }, onProgress);
  } catch (err) {
    await unlink(partial).catch(() => {});
    throw backupInvalid(`${src}: cannot be decompressed: ${(err as Error).message}`);
  }
  await rename(partial, dest);
  return digests;
}
