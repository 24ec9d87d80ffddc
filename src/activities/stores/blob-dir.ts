import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { checkedDigest, sha256 as sha256Hex } from '../digest.js';
import { ensurePrivateDir, PRIVATE_FILE_MODE } from '../files.js';

/** `<sha[0:2]>/<sha>`: nothing else may come from a table, since a reference becomes a path */
const REFERENCE = /^([0-9a-f]{2})\/(\1[0-9a-f]{62})$/;

const isMissing = (error: unknown): boolean => (error as NodeJS.ErrnoException | null)?.code === 'ENOENT';

/** The blob a row names is not there (collected under a concurrent delete, or lost). */
export class BlobMissingError extends Error {
  override name = 'BlobMissingError';
}

/**
 * A directory of content-addressed, immutable blobs at `<dir>/<sha[0:2]>/<sha>`, shared by the object store
 * (`<root>/blobs`) and the Postgres table storing content by reference. Writes are atomic and verified: a
 * temporary file in the blob's own directory, fsync, digest check, rename, directory fsync; so a blob that
 * exists under its name is complete. Which blobs are still needed is the owner's knowledge: see collect().
 */
export class BlobDir {
  /** `private`: blobs 0600 in 0700 directories (snapshots of someone's data), else 0644 (a store's own blobs) */
  constructor(
    readonly dir: string,
    private readonly options: { private?: boolean } = {},
  ) {}

  /**
   * Where the blob of this digest lives. The digest is checked first (a row or a manifest can hold anything,
   * `../../x` too): anything but 64 lowercase hex characters is a non-retryable InvalidDigest naming `what`.
   */
  path(sha256: string, what = 'blob'): string {
    const sha = checkedDigest(sha256, what);
    return join(this.dir, sha.slice(0, 2), sha);
  }

  /** the blob's path relative to the directory, as a table stores it */
  static reference(sha256: string, what = 'blob'): string {
    const sha = checkedDigest(sha256, what);
    return `${sha.slice(0, 2)}/${sha}`;
  }

  /** the digest a stored reference names, or undefined when it is not exactly `<sha[0:2]>/<sha>` */
  static digestOf(reference: string): string | undefined {
    return REFERENCE.exec(reference)?.[2];
  }

  /**
   * The blob's content, checked against the size and digest its row records; `what` names the object in errors.
   * Throws BlobMissingError when there is no such blob.
   */
  async read(sha256: string, size: number, what: string): Promise<Buffer> {
    let content: Buffer;
    try {
      content = await readFile(this.path(sha256, what));
    } catch (error) {
      if (isMissing(error)) throw new BlobMissingError(`${what}: blob ${sha256} is missing`);
      throw error;
    }
    if (content.length !== size || sha256Hex(content) !== sha256) {
      throw new Error(`${what}: blob ${sha256} is corrupt (${content.length} bytes, sha256 ${sha256Hex(content)})`);
    }
    return content;
  }

  /**
   * Writes the blob unless an intact one is there (an existing blob is reused only after its content was read
   * and verified; a corrupt one gets rewritten). `what` names the object in errors.
   */
  async write(sha256: string, content: Buffer, what = 'blob'): Promise<void> {
    const path = this.path(sha256, what);
    if (await this.intact(path, sha256, content.length)) return;
    const dir = join(this.dir, sha256.slice(0, 2));
    // a new fan-out directory must itself be made durable in the blob directory
    if (await this.makeDir(dir)) await fsyncDir(this.dir);
    const temp = join(dir, `.${sha256}.${process.pid}.${randomUUID()}.tmp`);
    try {
      const file = await open(temp, 'wx', this.options.private ? PRIVATE_FILE_MODE : 0o644);
      try {
        await file.writeFile(content);
        await file.sync();
      } finally {
        await file.close();
      }
      const written = await readFile(temp);
      if (written.length !== content.length || sha256Hex(written) !== sha256)
        throw new Error(`blob ${sha256}: the written file does not match its digest`);
      await rename(temp, path);
    } catch (error) {
      await unlink(temp).catch(() => {});
      throw error;
    }
    await fsyncDir(dir);
  }

  /**
   * Unlinks the blobs of these digests that `referenced` (the owner's index, asked once) no longer names. The
   * owner must keep writers of the same blobs out meanwhile, or a blob could go just as a new row names it.
   */
  async collect(
    shas: Iterable<string>,
    referenced: (shas: string[]) => Set<string> | Promise<Set<string>>,
  ): Promise<void> {
    const candidates = [...new Set(shas)];
    if (candidates.length === 0) return;
    const keep = await referenced(candidates);
    for (const sha of candidates) {
      if (keep.has(sha)) continue;
      try {
        await unlink(this.path(sha));
      } catch (error) {
        if (!isMissing(error)) throw error;
      }
    }
  }

  /** Creates the fan-out directory (0700 when private); whether it was created. */
  private async makeDir(dir: string): Promise<boolean> {
    if (!this.options.private) return Boolean(await mkdir(dir, { recursive: true }));
    if (
      await stat(dir).then(
        () => true,
        () => false,
      )
    )
      return false;
    await ensurePrivateDir(dir);
    return true;
  }

  /** Whether the blob exists and holds exactly this content's digest. */
  private async intact(path: string, sha256: string, size: number): Promise<boolean> {
    try {
      const existing = await readFile(path);
      return existing.length === size && sha256Hex(existing) === sha256;
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
