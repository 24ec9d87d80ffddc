import { randomUUID } from 'node:crypto';
import { chmod, mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';

/** Evidence, snapshots, work files and keys: readable by the worker's user only. */
export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/**
 * Creates `dir` (and its missing parents) as 0700. An existing directory keeps its mode: tightening a directory
 * someone else shares is their decision, and the files inside are 0600 anyway.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  const created = await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  // mkdir's mode is filtered by the umask; make the directories this call created exactly 0700
  if (created) {
    for (let d = dir; d.length >= created.length; d = dirname(d)) await chmod(d, PRIVATE_DIR_MODE);
  }
}

/**
 * The one atomic write: a temporary file beside `path`, fsync, rename over `path` (write-file-atomic), so a
 * reader sees the old bytes or the new ones, never a torn file. Private (0600 in a 0700 directory) by default.
 */
export async function writeFileAtomically(
  path: string,
  data: string | Buffer,
  /** `keep`: a file someone else owns (a service's flag file) keeps its mode and owner; the directory must exist */
  options: { mode?: number | 'keep' } = {},
): Promise<void> {
  if (options.mode === 'keep') return writeFileAtomic(path, data, { fsync: true });
  await ensurePrivateDir(dirname(path));
  await writeFileAtomic(path, data, { mode: options.mode ?? PRIVATE_FILE_MODE, fsync: true });
}

/**
 * writeFileAtomically for content too large to hold in memory and written over one or several attempts (work
 * files of millions of lines): appends go to a private staging file beside `path` (0600 in a 0700 directory);
 * sync() makes what was appended durable, so a later attempt on the same host can resume() from there; commit()
 * fsyncs and renames it over `path` and fsyncs the directory, so a reader sees the old file or the whole new one.
 */
export class StagedFile {
  private constructor(
    readonly path: string,
    /** the staging file's name (beside `path`): what a later attempt resumes */
    readonly staging: string,
    private readonly file: FileHandle,
    private size: number,
  ) {}

  get stagingPath(): string {
    return join(dirname(this.path), this.staging);
  }

  get bytes(): number {
    return this.size;
  }

  static async create(path: string): Promise<StagedFile> {
    await ensurePrivateDir(dirname(path));
    const staging = `.${basename(path)}.${process.pid}.${randomUUID()}.staging`;
    const file = await open(join(dirname(path), staging), 'wx', PRIVATE_FILE_MODE);
    return new StagedFile(path, staging, file, 0);
  }

  /**
   * The staging file an earlier attempt synced `bytes` of, cut back to them (what it appended after its last
   * sync() is dropped); undefined when it is not here (another host wrote it) or shorter.
   */
  static async resume(path: string, staging: string, bytes: number): Promise<StagedFile | undefined> {
    if (staging !== basename(staging) || !staging.endsWith('.staging')) return undefined;
    let file: FileHandle;
    try {
      file = await open(join(dirname(path), staging), 'r+');
    } catch {
      return undefined;
    }
    if ((await file.stat()).size < bytes) {
      await file.close();
      return undefined;
    }
    await file.truncate(bytes);
    return new StagedFile(path, staging, file, bytes);
  }

  async append(chunk: Buffer): Promise<void> {
    // at explicit positions (a resumed file was cut back), looping: a write may write part of the chunk
    for (let done = 0; done < chunk.length;) {
      const { bytesWritten } = await this.file.write(chunk, done, chunk.length - done, this.size + done);
      done += bytesWritten;
    }
    this.size += chunk.length;
  }

  async sync(): Promise<void> {
    await this.file.sync();
  }

  async commit(): Promise<void> {
    try {
      await this.file.sync();
    } finally {
      await this.file.close();
    }
    await rename(this.stagingPath, this.path);
    const dir = await open(dirname(this.path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  async abandon(): Promise<void> {
    await this.file.close().catch(() => {});
    await unlink(this.stagingPath).catch(() => {});
  }
}
