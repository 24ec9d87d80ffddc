import { ApplicationFailure } from '@temporalio/common';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorType } from '../../shared/constants.js';
import { sha256 } from '../digest.js';
import { writeFileAtomically } from '../files.js';
import type { ConfigStore } from './types.js';

// Last known good configuration, one per target (seed: `production_config.ini.last_known_good`): the store's
// snapshot in `<dir>/<environment>.<target>.last_known_good`, its digest beside it in `….json`; restoring keeps
// the bytes it replaces as `….failed_backup` (seed: `cp … production_config.ini.failed_backup`). Private files.

export interface LastKnownGood {
  file: string;
  digest: string;
  bytes: number;
  /** ISO time of the snapshot */
  at: string;
  store: string;
}

const readIfThere = (path: string) =>
  readFile(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });

export class LastKnownGoodFiles {
  readonly file: string;

  constructor(
    dir: string,
    name: string,
    private readonly store: ConfigStore,
  ) {
    this.file = join(dir, `${name}.last_known_good`);
  }

  get metaFile(): string {
    return `${this.file}.json`;
  }

  get failedBackupFile(): string {
    return this.file.replace(/\.last_known_good$/, '.failed_backup');
  }

  /** Snapshots the store now (idempotent: the same content gives the same file and digest). */
  async save(): Promise<LastKnownGood> {
    const content = await this.store.snapshot();
    const digest = sha256(content);
    const existing = await this.read().catch(() => undefined);
    if (existing?.digest === digest) return existing;
    await writeFileAtomically(this.file, content);
    const meta: LastKnownGood = {
      file: this.file,
      digest,
      bytes: content.length,
      at: new Date().toISOString(),
      store: this.store.describe(),
    };
    await writeFileAtomically(this.metaFile, `${JSON.stringify(meta, null, 2)}\n`);
    return meta;
  }

  /** The recorded snapshot, its bytes checked against the recorded digest. */
  async read(): Promise<LastKnownGood & { content: Buffer }> {
    const [content, metaText] = await Promise.all([readIfThere(this.file), readIfThere(this.metaFile)]);
    if (!content || !metaText)
      throw ApplicationFailure.nonRetryable(
        `no last known good configuration for ${this.store.describe()} (${this.file})`,
        ErrorType.VerificationFailed,
      );
    const meta = JSON.parse(metaText.toString('utf8')) as LastKnownGood;
    if (sha256(content) !== meta.digest)
      throw ApplicationFailure.nonRetryable(
        `${this.file} does not match the digest recorded in ${this.metaFile}`,
        ErrorType.EvidenceMismatch,
      );
    return { ...meta, content };
  }

  /**
   * Puts the snapshot back. The bytes it replaces are kept as the failed backup first; a retry after the restore
   * (the store already holds the snapshot) keeps the failed backup the first attempt wrote.
   */
  async restore(expectDigest?: string): Promise<{
    changed: boolean;
    restoredDigest: string;
    replacedDigest: string;
    failedBackup?: string;
  }> {
    const lkg = await this.read();
    if (expectDigest && lkg.digest !== expectDigest)
      throw ApplicationFailure.nonRetryable(
        `the last known good configuration changed since the plan (${lkg.digest.slice(0, 12)}…, plan: ${expectDigest.slice(0, 12)}…)`,
        ErrorType.PlanStale,
      );
    const current = await this.store.snapshot();
    if (current.equals(lkg.content)) {
      const backup = await readIfThere(this.failedBackupFile);
      return {
        changed: false,
        restoredDigest: lkg.digest,
        replacedDigest: backup ? sha256(backup) : lkg.digest,
        ...(backup ? { failedBackup: this.failedBackupFile } : {}),
      };
    }
    await writeFileAtomically(this.failedBackupFile, current);
    await this.store.restoreSnapshot(lkg.content);
    return {
      changed: true,
      restoredDigest: lkg.digest,
      replacedDigest: sha256(current),
      failedBackup: this.failedBackupFile,
    };
  }

  /**
   * The undo of restore(): puts the failed backup (the bytes restore replaced, `replacedDigest`) back — only while
   * the store still holds the last known good bytes; what someone changed since is left alone (skipped).
   */
  async putBack(replacedDigest: string): Promise<{ changed: boolean; skipped?: boolean }> {
    const backup = await readIfThere(this.failedBackupFile);
    if (!backup || sha256(backup) !== replacedDigest)
      throw ApplicationFailure.nonRetryable(
        `${this.failedBackupFile} is not the configuration the restore replaced (${replacedDigest.slice(0, 12)}…)`,
        ErrorType.EvidenceMismatch,
      );
    const current = await this.store.snapshot();
    if (current.equals(backup)) return { changed: false };
    const lkg = await this.read();
    if (!current.equals(lkg.content)) return { changed: false, skipped: true };
    return this.store.restoreSnapshot(backup);
  }
}
