import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type _Object,
} from '@aws-sdk/client-s3';
import { PG_BACKUP_FILE_PATTERN } from '../../shared/schemas.js';
import { writeFileAtomically } from '../files.js';
import { MANIFEST_SUFFIX } from '../sqlite/backup-files.js';
import type { PostgresTarget, S3Location } from './target.js';

// An `s3` backup location: the bucket is the record, the local cache (backups.location.cacheDir) mirrors it. A
// backup is dumped into the cache and uploaded (the manifest last: it is what makes it a backup); before backups
// are listed or chosen, every object whose ETag differs from the cached copy's is downloaded again, so a damaged or
// replaced object in the bucket is judged by its own bytes, never by an older local copy.

const isOurs = (name: string) =>
  PG_BACKUP_FILE_PATTERN.test(name) ||
  (name.endsWith(MANIFEST_SUFFIX) && PG_BACKUP_FILE_PATTERN.test(name.slice(0, -MANIFEST_SUFFIX.length)));
const etagFile = (dir: string, name: string) => join(dir, '.etags', name);

async function listObjects(s3: S3Location): Promise<_Object[]> {
  const out: _Object[] = [];
  let token: string | undefined;
  do {
    const page = await s3.client.send(
      new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: s3.prefix, ContinuationToken: token }),
    );
    out.push(...(page.Contents ?? []));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/** Brings the cache in line with the bucket: changed or new objects downloaded, ones gone from the bucket removed. */
export async function syncFromS3(t: PostgresTarget): Promise<void> {
  const s3 = t.s3!;
  const dir = t.backupsDir;
  await mkdir(join(dir, '.etags'), { recursive: true, mode: 0o700 });
  const present = new Set<string>();
  for (const o of await listObjects(s3)) {
    const name = o.Key!.slice(s3.prefix.length);
    if (name.includes('/') || !isOurs(name)) continue;
    present.add(name);
    const cached = await readFile(etagFile(dir, name), 'utf8').catch(() => undefined);
    const size = await stat(join(dir, name)).then(
      (s) => s.size,
      () => -1,
    );
    if (cached === o.ETag && size === o.Size) continue;
    const got = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: o.Key }));
    const partial = join(dir, `${name}.partial`);
    await pipeline(got.Body as Readable, createWriteStream(partial, { mode: 0o600 }));
    await rename(partial, join(dir, name));
    await writeFileAtomically(etagFile(dir, name), got.ETag ?? o.ETag ?? '');
  }
  // a cached file whose object is gone is no backup any more
  for (const name of await readdir(dir))
    if (isOurs(name) && !present.has(name)) {
      await rm(join(dir, name), { force: true });
      await rm(etagFile(dir, name), { force: true });
    }
}

/** Uploads a dump and then its manifest (idempotent: a PUT of the same bytes again changes nothing). */
export async function uploadToS3(t: PostgresTarget, file: string): Promise<void> {
  const s3 = t.s3!;
  for (const name of [file, `${file}${MANIFEST_SUFFIX}`]) {
    const path = join(t.backupsDir, name);
    const put = await s3.client.send(
      new PutObjectCommand({
        Bucket: s3.bucket,
        Key: `${s3.prefix}${name}`,
        Body: await readFile(path),
      }),
    );
    await mkdir(join(t.backupsDir, '.etags'), { recursive: true, mode: 0o700 });
    await writeFileAtomically(etagFile(t.backupsDir, name), put.ETag ?? '');
  }
}

export async function deleteFromS3(t: PostgresTarget, name: string): Promise<void> {
  await t.s3!.client.send(new DeleteObjectCommand({ Bucket: t.s3!.bucket, Key: `${t.s3!.prefix}${name}` }));
}
