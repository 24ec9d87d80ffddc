import { demoMilestones } from '../src/demo/sqlite-environment.js';
import { processorCheckpoints } from '../src/demo/job-processor-environment.js';
import { SCHEMA, SCHEMA_SQL_PATH } from '../src/demo/sqlite-app/schema.js';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, describe, expect, it } from 'vitest';
import {
  approvalPolicyOf,
  EnvironmentError,
  loadEnvironment,
  loadTarget,
  withEnvironmentErrors,
} from '../src/activities/environment.js';
import { generateKeyPair, type KeyPair } from '../src/activities/keys.js';
import {
  checkpointSchema,
  DEFAULT_ESCALATION,
  describeZodError,
  featureFlagRollbackInputSchema,
} from '../src/shared/schemas.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function envDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'runbook-environment-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** A minimal valid target; `service` and `names` can be swapped out to break one field at a time. */
function targetYaml(
  name: string,
  {
    service = ['type: process', 'command: [node, service.mjs]', 'pidFile: ../run/web.pid'],
    names = ['dualWriteEnabled: DUAL_WRITE', 'strictMode: STRICT_MODE', 'legacyWriteBlocked: LEGACY_BLOCKED'],
  }: { service?: string[]; names?: string[] } = {},
): string {
  return [
    `  ${name}:`,
    '    flags:',
    '      store: { type: env-file, path: flags/web.env }',
    '      names:',
    ...names.map((l) => `        ${l}`),
    '    service:',
    ...service.map((l) => `      ${l}`),
    '    health:',
    '      http: { url: "http://127.0.0.1:8080/health" }',
  ].join('\n');
}

const minimal = (targets = targetYaml('web')) => `targets:\n${targets}\n`;

async function loadError(dir: string, name: string, target?: string): Promise<EnvironmentError> {
  const err = await (target ? loadTarget(dir, name, target) : loadEnvironment(dir, name)).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EnvironmentError);
  return err as EnvironmentError;
}

describe('loadEnvironment', () => {
  it('loads a minimal file and applies every default', async () => {
    const dir = envDir({ 'staging.yaml': minimal() });
    const env = await loadEnvironment(dir, 'staging');
    expect(env.name).toBe('staging');
    expect(env.file).toBe(join(dir, 'staging.yaml'));
    expect(env.config.name).toBeUndefined();
    expect(env.config.approval).toEqual({
      approvers: [],
      quorum: 1,
      allowSelfApproval: false,
      timeout: '1h',
      requireSignatures: false,
      signatureTtl: '15m',
      keys: [],
    });
    expect(env.config.lockWait).toBe('15m');
    expect(env.config.evidence).toEqual({ workerKeys: [] });
    expect(env.config.escalation).toEqual(DEFAULT_ESCALATION);
    expect(env.config.escalation.map((l) => l.after)).toEqual(['0s', '30m', '1h', '2h']);
    expect(env.config.notifications).toEqual({ console: { type: 'log' } });
    expect(env.config.targets.web).toEqual({
      flags: {
        store: { type: 'env-file', path: 'flags/web.env' },
        names: { dualWriteEnabled: 'DUAL_WRITE', strictMode: 'STRICT_MODE', legacyWriteBlocked: 'LEGACY_BLOCKED' },
      },
      service: {
        type: 'process',
        command: ['node', 'service.mjs'],
        pidFile: '../run/web.pid',
        reload: 'sighup',
        stopTimeout: '10s',
        passEnv: [],
        env: {},
      },
      health: {
        http: { url: 'http://127.0.0.1:8080/health', expectStatus: 200, timeout: '5s', within: '30s' },
        logPattern: 'dual_write_scheduled',
        quietWindow: '30s',
      },
    });
  });

  it('fills the defaults of a partial approval policy and normalizes durations to strings', async () => {
    const text = [
      'name: prod',
      'approval: { approvers: [alice, bob], quorum: 2 }',
      'escalation:',
      '  - { level: 1, after: 0 }',
      '  - { level: 2, after: 15m, channels: [pager], contact: lead }',
      'notifications:',
      '  pager: { type: webhook, urlEnv: PAGER_URL }',
      minimal().trimEnd(),
      '',
    ].join('\n');
    const env = await loadEnvironment(envDir({ 'prod.yaml': text }), 'prod');
    expect(env.config.name).toBe('prod');
    expect(env.config.approval).toEqual({
      approvers: ['alice', 'bob'],
      quorum: 2,
      allowSelfApproval: false,
      timeout: '1h',
      requireSignatures: false,
      signatureTtl: '15m',
      keys: [],
    });
    expect(env.config.escalation).toEqual([
      { level: 1, after: '0', channels: [] },
      { level: 2, after: '15m', channels: ['pager'], contact: 'lead' },
    ]);
    expect(env.config.notifications).toEqual({ pager: { type: 'webhook', urlEnv: 'PAGER_URL', timeout: '10s' } });
  });

  it('resolves relative paths against the file directory, absolute paths unchanged', async () => {
    const dir = envDir({ 'dev.yaml': minimal() });
    // a relative directory argument is resolved against the working directory first
    const env = await loadEnvironment(relative(process.cwd(), dir), 'dev');
    expect(env.file).toBe(join(dir, 'dev.yaml'));
    expect(env.resolvePath('flags/web.env')).toBe(join(dir, 'flags', 'web.env'));
    expect(env.resolvePath('../run/web.pid')).toBe(resolve(dir, '..', 'run', 'web.pid'));
    expect(env.resolvePath('/etc/app.env')).toBe('/etc/app.env');
  });

  it('loads the repository demo environment', async () => {
    const env = await loadEnvironment(resolve('environments'), 'demo');
    expect(env.config.name).toBe('demo');
    expect(Object.keys(env.config.targets)).toEqual(['web', 'objects', 'app', 'jobs', 'teams', 'cleanup']);
    expect(env.resolvePath('../.data/demo/web.env')).toBe(resolve('.data/demo/web.env'));
  });

  it("the demo job processor's checkpoints are the ones the test environments get", async () => {
    const env = await loadEnvironment(resolve('environments'), 'demo');
    const written = Object.fromEntries(
      Object.entries(processorCheckpoints()).map(([n, c]) => [n, checkpointSchema.parse(c)]),
    );
    expect(env.config.targets.jobs?.migration?.checkpoints).toEqual(written);
  });

  it("the demo SQLite target's milestone manifests name exactly the demo schema's objects", async () => {
    const env = await loadEnvironment(resolve('environments'), 'demo');
    const sqlite = env.config.targets.app!.sqlite!;
    const written = demoMilestones() as Record<string, Record<string, unknown>>;
    for (const name of ['memory', 'vector']) {
      const m = sqlite.milestones[name]!;
      const expected = written[name]!;
      expect([...m.tables, ...m.virtualTables].sort(), name).toEqual(
        [...(expected.tables as string[]), ...((expected.virtualTables as string[]) ?? [])].sort(),
      );
      expect(m.indexes, name).toEqual(expected.indexes);
      expect(m.triggers, name).toEqual(expected.triggers);
      expect(m.flags, name).toEqual(expected.flags ?? {});
    }
    expect([...sqlite.validation.coreTables].sort()).toEqual([...SCHEMA.core.tables].sort());
    expect(env.resolvePath(sqlite.init && 'sqlFile' in sqlite.init ? sqlite.init.sqlFile : '')).toBe(SCHEMA_SQL_PATH);
  });

  it('names the file and the field path of a missing field', async () => {
    const dir = envDir({
      'staging.yaml': minimal(targetYaml('web', { service: ['type: process', 'command: [node]'] })),
    });
    const err = await loadError(dir, 'staging');
    expect(err.name).toBe('EnvironmentInvalid');
    expect(err.message).toBe(
      `${join(dir, 'staging.yaml')}: targets.web.service.pidFile: Invalid input: expected string, received undefined`,
    );
  });

  it.each(['Web-App', 'web;rm -rf /', 'web_app', '-web'])(
    'rejects the kubernetes deployment name %j',
    async (deployment) => {
      const service = ['type: kubernetes', `deployment: ${JSON.stringify(deployment)}`, 'namespace: prod'];
      const dir = envDir({ 'k8s.yaml': minimal(targetYaml('api', { service })) });
      const err = await loadError(dir, 'k8s');
      expect(err.message).toBe(
        `${join(dir, 'k8s.yaml')}: targets.api.service.deployment: must be a Kubernetes resource name (RFC 1123)`,
      );
    },
  );

  it('accepts a valid kubernetes service and fills its rollout timeout', async () => {
    const service = ['type: kubernetes', 'deployment: web-v2.api', 'namespace: prod'];
    const env = await loadEnvironment(envDir({ 'k8s.yaml': minimal(targetYaml('api', { service })) }), 'k8s');
    expect(env.config.targets.api!.service).toEqual({
      type: 'kubernetes',
      deployment: 'web-v2.api',
      namespace: 'prod',
      rolloutTimeout: '5m',
    });
  });

  it.each(['STRICT-MODE', '1STRICT', 'STRICT MODE', '$(id)'])(
    'rejects the environment variable name %j',
    async (bad) => {
      const names = [
        'dualWriteEnabled: DUAL_WRITE',
        `strictMode: ${JSON.stringify(bad)}`,
        'legacyWriteBlocked: LEGACY_BLOCKED',
      ];
      const dir = envDir({ 'staging.yaml': minimal(targetYaml('web', { names })) });
      const err = await loadError(dir, 'staging');
      expect(err.message).toBe(
        `${join(dir, 'staging.yaml')}: targets.web.flags.names.strictMode: must be an environment variable name`,
      );
    },
  );

  it('rejects a bad webhook urlEnv and a bad duration, listing both problems', async () => {
    const text = [
      'notifications:',
      '  hook: { type: webhook, urlEnv: "bad-name" }',
      'approval: { timeout: soon }',
      minimal(),
    ].join('\n');
    const dir = envDir({ 'staging.yaml': text });
    const err = await loadError(dir, 'staging');
    expect(err.message).toContain(`${join(dir, 'staging.yaml')}: `);
    expect(err.message).toContain('approval.timeout: must be a duration such as 30s, 5m or 1h');
    expect(err.message).toContain('notifications.hook.urlEnv: must be an environment variable name');
    expect(err.message.split('; ')).toHaveLength(2);
  });

  it('rejects unknown fields (strict objects)', async () => {
    const dir = envDir({ 'staging.yaml': `owner: me\n${minimal()}` });
    const err = await loadError(dir, 'staging');
    expect(err.message).toBe(`${join(dir, 'staging.yaml')}: (input): Unrecognized key: "owner"`);
  });

  it('rejects a file without targets and a bad target key, saying why', async () => {
    const dir = envDir({ 'none.yaml': 'targets: {}\n', 'caps.yaml': minimal(targetYaml('Web')) });
    expect((await loadError(dir, 'none')).message).toBe(
      `${join(dir, 'none.yaml')}: targets: must define at least one target`,
    );
    expect((await loadError(dir, 'caps')).message).toBe(
      `${join(dir, 'caps.yaml')}: targets.Web: Invalid key in record: must be lowercase letters, digits, ".", "_" or "-" (1-64 chars)`,
    );
  });

  it('rejects an empty file', async () => {
    const dir = envDir({ 'empty.yaml': '' });
    expect((await loadError(dir, 'empty')).message).toBe(
      `${join(dir, 'empty.yaml')}: (input): Invalid input: expected object, received null`,
    );
  });

  it('names the missing file of an unknown environment', async () => {
    const dir = envDir({ 'staging.yaml': minimal() });
    const err = await loadError(dir, 'prod');
    expect(err.message).toBe(`unknown environment "prod": ${join(dir, 'prod.yaml')} does not exist`);
  });

  it('rejects a name field that does not match the file name', async () => {
    const dir = envDir({ 'staging.yaml': `name: prod\n${minimal()}` });
    const err = await loadError(dir, 'staging');
    expect(err.message).toBe(`${join(dir, 'staging.yaml')}: name: "prod" does not match the file name "staging"`);
  });

  it('reports invalid YAML with the file path', async () => {
    const dir = envDir({ 'broken.yaml': 'targets:\n  web: [unclosed\n' });
    const err = await loadError(dir, 'broken');
    expect(err.message.startsWith(`${join(dir, 'broken.yaml')}: not valid YAML: `)).toBe(true);
  });

  it.each(['../etc/passwd', '../staging', 'a/b', 'Prod', '', '.hidden', 'x'.repeat(65)])(
    'rejects the environment name %j before touching the file system',
    async (name) => {
      const dir = envDir({ 'staging.yaml': minimal() });
      mkdirSync(join(dir, 'sub'));
      const err = await loadError(join(dir, 'sub'), name);
      expect(err.message).toBe(
        `environment name "${name}": (input): must be lowercase letters, digits, ".", "_" or "-" (1-64 chars)`,
      );
    },
  );
});

describe('approvers with keys', () => {
  const key = (k: KeyPair) => JSON.stringify(k.publicKey);
  const alice = generateKeyPair();
  const bob = generateKeyPair();
  const withApproval = (lines: string[]) => ['approval:', ...lines.map((l) => `  ${l}`), minimal()].join('\n');

  it('reads inline keys and key files, giving every key its id', async () => {
    const dir = envDir({
      'bob.pub': `${bob.publicKey}\n`,
      'signed.yaml': withApproval([
        'approvers:',
        `  - { name: alice, key: ${key(alice)} }`,
        '  - { name: bob, keyFile: bob.pub }',
        'requireSignatures: true',
        'abortBy: [alice, bob, rita]',
      ]),
    });
    const env = await loadEnvironment(dir, 'signed');
    expect(approvalPolicyOf(env)).toMatchObject({
      approvers: ['alice', 'bob'],
      requireSignatures: true,
      abortBy: ['alice', 'bob', 'rita'],
      keys: [
        { name: 'alice', publicKey: alice.publicKey, keyId: alice.keyId },
        { name: 'bob', publicKey: bob.publicKey, keyId: bob.keyId },
      ],
    });
  });

  it.each([
    [['approvers: [alice, "Alice\\u200b"]'], 'approval.approvers.1: "Alice\u200b" is the same person as "alice"'],
    [
      ['approvers: [alice, bob]', 'requireSignatures: true'],
      'approval.approvers.0: alice has no key, but requireSignatures is true',
    ],
    [
      ['approvers:', `  - { name: alice, key: ${key(alice)} }`, `  - { name: bob, key: ${key(alice)} }`],
      "approval.approvers.1.key: this key is already alice's",
    ],
    [['approvers: [alice]', 'quorum: 2'], 'approval.quorum: 2 exceeds the 1 approvers listed'],
    [['approvers:', '  - { name: alice, key: "ed25519:short" }'], 'approval.approvers.0'],
  ])('refuses %j: %s', async (lines, message) => {
    const dir = envDir({ 'bad.yaml': withApproval(lines) });
    expect((await loadError(dir, 'bad')).message).toContain(message);
  });

  it('names a key file that is missing or does not hold a key line', async () => {
    const dir = envDir({
      'junk.pub': 'not a key\n',
      'missing.yaml': withApproval(['approvers:', '  - { name: alice, keyFile: nowhere.pub }']),
      'junk.yaml': withApproval(['approvers:', '  - { name: alice, keyFile: junk.pub }']),
    });
    expect((await loadError(dir, 'missing')).message).toMatch(/approval: alice's keyFile: cannot read .*nowhere\.pub/);
    expect((await loadError(dir, 'junk')).message).toMatch(/junk\.pub does not hold an "ed25519:…" line/);
  });
});

describe('loadTarget', () => {
  const twoTargets = minimal(`${targetYaml('web')}\n${targetYaml('worker')}`);

  it('returns the environment together with the named target', async () => {
    const dir = envDir({ 'staging.yaml': twoTargets });
    const loaded = await loadTarget(dir, 'staging', 'worker');
    expect(loaded.name).toBe('staging');
    expect(loaded.targetName).toBe('worker');
    expect(loaded.target).toBe(loaded.config.targets.worker);
    expect(loaded.resolvePath('x')).toBe(join(dir, 'x'));
  });

  it('lists the known targets for an unknown one', async () => {
    const dir = envDir({ 'staging.yaml': twoTargets });
    const err = await loadError(dir, 'staging', 'api');
    expect(err.message).toBe(`${join(dir, 'staging.yaml')}: targets.api: unknown target (known: web, worker)`);
  });
});

describe('withEnvironmentErrors', () => {
  it('turns an EnvironmentError into a non-retryable EnvironmentInvalid failure', async () => {
    const err = await withEnvironmentErrors(() => Promise.reject(new EnvironmentError('bad file'))).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe('EnvironmentInvalid');
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as ApplicationFailure).message).toBe('bad file');
  });

  it('passes other errors and results through', async () => {
    const other = new Error('disk on fire');
    await expect(withEnvironmentErrors(() => Promise.reject(other))).rejects.toBe(other);
    await expect(withEnvironmentErrors(() => Promise.resolve(42))).resolves.toBe(42);
  });
});

describe('featureFlagRollbackInputSchema', () => {
  const valid = { environment: 'demo', target: 'web', requester: 'alice', mode: 'disable-dual-write' };
  const problems = (input: unknown): string => {
    const result = featureFlagRollbackInputSchema.safeParse(input);
    expect(result.success).toBe(false);
    return describeZodError(result.error!);
  };

  it('applies defaults and normalizes values', () => {
    expect(featureFlagRollbackInputSchema.parse({ ...valid, requester: '  alice  ' })).toEqual({
      ...valid,
      reason: 'not given',
      dryRun: false,
    });
    const full = featureFlagRollbackInputSchema.parse({
      ...valid,
      mode: 'block-legacy-writes',
      reason: ' incident ',
      incidentTicket: 'INC-1',
      dryRun: true,
      approval: { quorum: 2, timeout: '15m' },
      quietWindow: 90_000,
    });
    expect(full).toEqual({
      ...valid,
      mode: 'block-legacy-writes',
      reason: 'incident',
      incidentTicket: 'INC-1',
      dryRun: true,
      approval: { quorum: 2, timeout: '15m' },
      quietWindow: '90000',
    });
  });

  it('rejects an unknown mode, naming the field and the options', () => {
    expect(problems({ ...valid, mode: 'rollback-everything' })).toBe(
      'mode: Invalid option: expected one of "disable-dual-write"|"disable-strict-mode"|"block-legacy-writes"|"enable-dual-write"',
    );
  });

  it('rejects a missing or blank requester', () => {
    expect(problems({ ...valid, requester: undefined })).toBe(
      'requester: Invalid input: expected string, received undefined',
    );
    expect(problems({ ...valid, requester: '   ' })).toBe('requester: must not be empty');
  });

  it('rejects bad durations, also nested ones', () => {
    expect(problems({ ...valid, quietWindow: '5 minutes' })).toBe(
      'quietWindow: must be a duration such as 30s, 5m or 1h',
    );
    expect(problems({ ...valid, quietWindow: -1 })).toBe('quietWindow: must be a duration such as 30s, 5m or 1h');
    expect(problems({ ...valid, approval: { timeout: '1 hour' } })).toBe(
      'approval.timeout: must be a duration such as 30s, 5m or 1h',
    );
  });

  it('rejects unknown fields, at the top level and nested', () => {
    expect(problems({ ...valid, force: true })).toBe('(input): Unrecognized key: "force"');
    expect(problems({ ...valid, approval: { quorum: 1, approvers: ['bob'] } })).toBe(
      'approval: Unrecognized key: "approvers"',
    );
  });

  it('rejects names that could escape into paths or commands', () => {
    expect(problems({ ...valid, environment: '../prod', target: 'web;id' })).toBe(
      'environment: must be lowercase letters, digits, ".", "_" or "-" (1-64 chars); ' +
        'target: must be lowercase letters, digits, ".", "_" or "-" (1-64 chars)',
    );
  });

  it('reports every problem, joined with "; "', () => {
    expect(
      problems({ mode: 'x' })
        .split('; ')
        .map((p) => p.split(':')[0]),
    ).toEqual(['environment', 'target', 'requester', 'mode']);
  });
});
