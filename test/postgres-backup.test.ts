import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../src/activities/digest.js';
import { pgManifestSchema } from '../src/activities/postgres/dump.js';
import { manifestPath, signatureProblem } from '../src/activities/sqlite/backup-files.js';
import { KubernetesService } from '../src/activities/adapters/kubernetes.js';
import { runCommand } from '../src/activities/adapters/exec.js';
import type { RunbookResult } from '../src/shared/types.js';
import { readCalls } from './fakes/make-fake.js';
import { readKubectlState } from './fakes/fake-kubectl.js';
import { runbook } from './support/cli.js';
import { Harness } from './support/harness.js';
import { saveHistory } from './support/histories.js';
import { pgTarget, startPgRunbook } from './support/postgres.js';

const h = new Harness();
beforeAll(() => h.start());
afterAll(() => h.close());

describe('postgres-backup', () => {
  it('takes a pg_dump custom-format backup with a signed manifest whose row counts are the dump snapshot', async () => {
    const t = await pgTarget(h, { rows: 120 });
    const handle = await startPgRunbook(h, 'postgres-backup', t, { tag: 'manual' });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect(result.steps.map((s) => [s.name, s.status])).toEqual([
      ['lock target', 'succeeded'],
      ['load environment', 'succeeded'],
      ['inspect database', 'succeeded'],
      ['seal plan', 'succeeded'],
      ['dump', 'succeeded'],
      ['retention', 'succeeded'],
    ]);
    const file = (result.extra as { backup: { file: string } }).backup.file;
    expect(file).toMatch(
      new RegExp(`^pgr-${process.pid}-\\d+_\\d{4}-\\d{2}-\\d{2}_\\d{2}-\\d{2}-\\d{2}-manual[a-z0-9]+\\.dump$`),
    );
    const path = join(t.backupsDir, file);
    const bytes = readFileSync(path);
    expect(bytes.subarray(0, 5).toString()).toBe('PGDMP'); // custom format
    const manifest = pgManifestSchema.parse(JSON.parse(readFileSync(manifestPath(t.backupsDir, file), 'utf8')));
    expect(manifest.dump).toEqual({ bytes: bytes.length, sha256: sha256(bytes) });
    expect(manifest.rows).toEqual({
      'public.organizations_team': 120,
      'public.organizations_teammigrationmap': 120,
      'public.teams_team': 120,
    });
    expect(manifest.serverVersion).toMatch(/^15\./);
    expect(signatureProblem(manifest, [h.workerKey.publicKey])).toBeUndefined();
    // pg_restore reads it: the three tables are in its table of contents
    const toc = execFileSync('pg_restore', ['--list', path], { encoding: 'utf8' });
    for (const table of ['organizations_team', 'teams_team', 'organizations_teammigrationmap'])
      expect(toc).toMatch(new RegExp(`TABLE DATA public ${table} `));
    await saveHistory(h.client, handle.workflowId, 'manual-tag', 'postgres-backup');
  });
});

describe('runbook schedule create postgres-backup, runbook postgres backups', () => {
  it('a daily schedule whose trigger takes a real backup, listed as verified by the CLI', async () => {
    const t = await pgTarget(h, { rows: 5 });
    const id = `postgres-backup--${t.envName}--db`;
    const cli = (...args: string[]) => runbook(args, h.env());
    const made = await cli('schedule', 'create', 'postgres-backup', '--env', t.envName, '--target', 'db');
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toContain(`created schedule ${id}: daily Postgres backup (seed scenario 4)`);
    expect(made.stdout).toContain('cron "30 2 * * *" (UTC)');
    try {
      expect((await cli('schedule', 'trigger', id)).code).toBe(0);
      for (let i = 0; !existsSync(t.backupsDir) || !readdirSync(t.backupsDir).some((f) => f.endsWith('.json')); i++) {
        if (i > 200) throw new Error('the triggered backup did not appear');
        await new Promise((r) => setTimeout(r, 100));
      }
      const listed = await cli('postgres', 'backups', '--env', t.envName, '--target', 'db', '--json');
      expect(listed.code, listed.stderr).toBe(0);
      const rows = JSON.parse(listed.stdout) as Array<{ verified: boolean; rows: Record<string, number> }>;
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ verified: true, rows: { 'public.organizations_team': 5 } });
    } finally {
      await cli('schedule', 'delete', id);
    }
  });
});

describe('Kubernetes service scaling', () => {
  it('reads the replica count, scales to 0 and back to exactly that count (not 1)', async () => {
    const t = await pgTarget(h, { replicas: 3 });
    const svc = new KubernetesService(
      { type: 'kubernetes', deployment: 'teams-api', namespace: t.namespace, rolloutTimeout: '5m' },
      runCommand,
    );
    expect(await svc.replicas()).toBe(3);
    await svc.stop();
    expect((await svc.status()).running).toBe(false);
    await svc.scale(3);
    expect(readKubectlState(t.kubeDir).deployments[`${t.namespace}/teams-api`]).toMatchObject({
      spec: { replicas: 3 },
    });
    const scales = readCalls(t.kubeDir, 'kubectl').filter((c) => c[0] === 'scale' && c.includes(t.namespace));
    expect(scales).toEqual([
      ['scale', 'deployment/teams-api', '-n', t.namespace, '--replicas=0'],
      ['scale', 'deployment/teams-api', '-n', t.namespace, '--replicas=3'],
    ]);
  });
});
