import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/dev/ports.js';
import { repoRoot } from '../src/dev/temporal-server.js';
import type { RunbookResult } from '../src/shared/types.js';
import { sigkill } from './support/child-worker.js';
import { Harness } from './support/harness.js';
import { addTeams, pgBackup, pgTarget, startPgRunbook } from './support/postgres.js';
import { approve } from './support/sqlite-recovery.js';

/** The `s3` backup location against a real S3-compatible server: MinIO (built by `npm run setup`), run here. */
const h = new Harness();
const MINIO = join(repoRoot, '.tools', 'bin', 'minio');
const creds = { accessKeyId: 'runbook-test', secretAccessKey: 'runbook-test-secret' };
let s3: S3Client;

beforeAll(async () => {
  if (!existsSync(MINIO)) throw new Error(`${MINIO} is missing: run \`npm run setup\` (it builds MinIO)`);
  const [port, consolePort] = [await freePort(), await freePort()];
  const dir = join(h.root, 'minio');
  mkdirSync(dir, { recursive: true });
  const minio = spawn(
    MINIO,
    ['server', dir, '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${consolePort}`],
    {
      env: { ...process.env, MINIO_ROOT_USER: creds.accessKeyId, MINIO_ROOT_PASSWORD: creds.secretAccessKey },
      stdio: 'ignore',
    },
  );
  // its data is under h.root: stopped after the worker, before close() removes the root
  h.onClose(() => sigkill(minio));
  const endpoint = `http://127.0.0.1:${port}`;
  for (
    let i = 0;
    !(await fetch(`${endpoint}/minio/health/live`).then(
      (r) => r.ok,
      () => false,
    ));
    i++
  ) {
    if (i > 300) throw new Error('MinIO did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  Object.assign(process.env, {
    PG_TEST_S3_ENDPOINT: endpoint,
    PG_TEST_S3_KEY: creds.accessKeyId,
    PG_TEST_S3_SECRET: creds.secretAccessKey,
  });
  s3 = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials: creds });
  await s3.send(new CreateBucketCommand({ Bucket: 'teams-backups' }));
  await h.start();
});
afterAll(() => h.close());

describe('postgres backups in an S3-compatible bucket', () => {
  it('backs up into the bucket; a restore from an empty cache skips the damaged newer object and restores the older', async () => {
    const cacheDir = join(h.root, 's3-cache');
    const location = {
      type: 's3',
      bucket: 'teams-backups',
      prefix: 'staging/',
      endpointEnv: 'PG_TEST_S3_ENDPOINT',
      accessKeyIdEnv: 'PG_TEST_S3_KEY',
      secretAccessKeyEnv: 'PG_TEST_S3_SECRET',
      cacheDir,
    };
    const t = await pgTarget(h, { rows: 60, compare: { within: 10 }, postgres: { backups: { location } } });
    const older = await pgBackup(h, t, { tag: 'older' });
    await addTeams(t, 900, 4);
    const newer = await pgBackup(h, t, { tag: 'newer' });
    const keys = (await s3.send(new ListObjectsV2Command({ Bucket: 'teams-backups' }))).Contents!.map((o) => o.Key);
    expect(keys.sort()).toEqual(
      [older, `${older}.manifest.json`, newer, `${newer}.manifest.json`].map((k) => `staging/${k}`).sort(),
    );

    // the newer object is damaged in the bucket (same size), and this worker's cache is gone
    const key = `staging/${newer}`;
    const bytes = Buffer.from(
      await (await s3.send(new GetObjectCommand({ Bucket: 'teams-backups', Key: key }))).Body!.transformToByteArray(),
    );
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
    await s3.send(new PutObjectCommand({ Bucket: 'teams-backups', Key: key, Body: bytes }));
    rmSync(cacheDir, { recursive: true, force: true });

    const handle = await startPgRunbook(h, 'postgres-restore', t);
    const status = await approve(h, handle);
    expect((status.plan!.details!.backup as { file: string }).file).toBe(older);
    expect(status.plan!.details!.skipped).toEqual([
      { file: newer, reason: expect.stringMatching(/^sha256 .* does not match its manifest/) },
    ]);
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect(await t.count('organizations_team')).toBe(60);
    const previous = (result.extra as { previousDatabase: string }).previousDatabase;
    expect(await t.count('organizations_team', previous)).toBe(64);
  });
});
