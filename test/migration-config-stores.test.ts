import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../src/shared/canonical-json.js';
import { runCommand } from '../src/activities/adapters/exec.js';
import type { CommandRunner } from '../src/activities/adapters/types.js';
import { configStoreFromConfig } from '../src/activities/migration/config/index.js';
import type { ConfigStore } from '../src/activities/migration/types.js';
import type { ConfigStoreConfig } from '../src/shared/schemas.js';
import { makeStatefulKubectl, readKubectlState, type KubectlState } from './fakes/fake-kubectl.js';
import { readCalls } from './fakes/make-fake.js';

// One conformance suite, run against every configuration store type: real files, and kubectl as a recording
// fake executable that keeps a small cluster in a state file.

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'runbook-config-stores-'));
  dirs.push(dir);
  return dir;
}

const withPath =
  (dir: string): CommandRunner =>
  (file, args, options = {}) =>
    runCommand(file, args, {
      ...options,
      env: { ...(options.env ?? process.env), PATH: [dir, dirname(process.execPath)].join(delimiter) },
    });

interface Subject {
  store: ConfigStore;
  /** the store's whole content as it is (a file's bytes; the fake cluster's object) */
  content(): string;
  /** writes kubectl made (file stores: none) */
  kubectlWrites(): number;
}

interface Case {
  name: string;
  /** two keys that are set, one that is not; `other` is set and never touched */
  keys: { a: string; b: string; absent: string; other: string };
  initial: { a: string; b: string; other: string };
  make(dir: string): Promise<Subject>;
}

const fileSubject = (config: ConfigStoreConfig, path: string): Subject => ({
  store: configStoreFromConfig(config, (p) => p),
  content: () => readFileSync(path, 'latin1'),
  kubectlWrites: () => 0,
});

async function kubeSubject(dir: string, config: ConfigStoreConfig, state: KubectlState): Promise<Subject> {
  await makeStatefulKubectl(dir, state);
  return {
    store: configStoreFromConfig(config, (p) => p, withPath(dir)),
    content: () => canonicalJson(readKubectlState(dir)),
    kubectlWrites: () => readCalls(dir, 'kubectl').filter((argv) => argv[0] !== 'get').length,
  };
}

const INI = [
  '; production configuration',
  '[data_backend]',
  'primary = heavydb   ; the current one',
  'dual_write = false',
  '',
  '# cut-over',
  'cutover_percent = 0',
  '',
  '[other]',
  'name = "quoted value"',
  '',
].join('\n');

const ENV = ['# backend', 'DATA_BACKEND=heavydb', 'DUAL_WRITE="false" # note', '', 'OTHER=kept', ''].join('\n');

const COMPOSE_MAP = [
  'services:',
  '  processor:',
  '    image: processor:1 # pinned',
  '    environment:',
  '      DATA_BACKEND: heavydb # the primary',
  "      DUAL_WRITE: 'false'",
  '      OTHER: kept',
  '    ports: ["8080:8080"]',
  '',
].join('\n');

const COMPOSE_LIST = [
  'services:',
  '  processor:',
  '    environment:',
  '      # backend settings',
  '      - DATA_BACKEND=heavydb',
  '      - "DUAL_WRITE=false"',
  '      - OTHER=kept',
  '  db:',
  '    image: postgres',
  '',
].join('\n');

const envKeys = { a: 'DATA_BACKEND', b: 'DUAL_WRITE', absent: 'MIGRATION_PHASE', other: 'OTHER' };
const envInitial = { a: 'heavydb', b: 'false', other: 'kept' };

const cases: Case[] = [
  {
    name: 'ini',
    keys: {
      a: 'data_backend.primary',
      b: 'data_backend.dual_write',
      absent: 'data_backend.phase',
      other: 'other.name',
    },
    initial: { a: 'heavydb', b: 'false', other: 'quoted value' },
    make: (dir) => {
      const path = join(dir, 'config.ini');
      writeFileSync(path, INI);
      return Promise.resolve(fileSubject({ type: 'ini', path }, path));
    },
  },
  {
    name: 'env-file',
    keys: envKeys,
    initial: envInitial,
    make: (dir) => {
      const path = join(dir, 'app.env');
      writeFileSync(path, ENV);
      return Promise.resolve(fileSubject({ type: 'env-file', path }, path));
    },
  },
  {
    name: 'compose (map form)',
    keys: envKeys,
    initial: envInitial,
    make: (dir) => {
      const file = join(dir, 'compose.yaml');
      writeFileSync(file, COMPOSE_MAP);
      return Promise.resolve(fileSubject({ type: 'compose', file, service: 'processor' }, file));
    },
  },
  {
    name: 'compose (list form)',
    keys: envKeys,
    initial: envInitial,
    make: (dir) => {
      const file = join(dir, 'compose.yaml');
      writeFileSync(file, COMPOSE_LIST);
      return Promise.resolve(fileSubject({ type: 'compose', file, service: 'processor' }, file));
    },
  },
  {
    name: 'kubernetes-configmap',
    keys: { a: 'data_backend.primary', b: 'dual_write', absent: 'phase', other: 'other' },
    initial: { a: 'heavydb', b: 'false', other: 'kept' },
    make: (dir) =>
      kubeSubject(
        dir,
        { type: 'kubernetes-configmap', configMap: 'processor', namespace: 'jobs' },
        {
          configmaps: {
            'jobs/processor': { data: { 'data_backend.primary': 'heavydb', dual_write: 'false', other: 'kept' } },
          },
          deployments: {},
        },
      ),
  },
  {
    name: 'kubernetes-env',
    keys: envKeys,
    initial: envInitial,
    make: (dir) =>
      kubeSubject(
        dir,
        { type: 'kubernetes-env', deployment: 'processor', namespace: 'jobs', container: 'app' },
        {
          configmaps: {},
          deployments: {
            'jobs/processor': {
              spec: {
                template: {
                  spec: {
                    containers: [
                      { name: 'sidecar', env: [{ name: 'DATA_BACKEND', value: 'sidecar' }] },
                      {
                        name: 'app',
                        env: [
                          { name: 'DATA_BACKEND', value: 'heavydb' },
                          { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 's', key: 'token' } } },
                          { name: 'DUAL_WRITE', value: 'false' },
                          { name: 'OTHER', value: 'kept' },
                        ],
                      },
                    ],
                  },
                },
              },
            },
          },
        },
      ),
  },
];

describe.each(cases)('config store conformance: $name', (c) => {
  const { a, b, absent, other } = c.keys;

  it('reads set keys and null for a key that is not set', async () => {
    const { store } = await c.make(tempDir());
    expect(await store.read([a, b, absent, other])).toEqual({
      [a]: c.initial.a,
      [b]: c.initial.b,
      [absent]: null,
      [other]: c.initial.other,
    });
    expect(store.describe()).toMatch(/\S/);
  });

  it('writes values and adds keys, leaving the other keys as they were', async () => {
    const { store } = await c.make(tempDir());
    expect(await store.write({ [a]: 'parquet', [b]: 'true', [absent]: 'cut-over' })).toEqual({ changed: true });
    expect(await store.read([a, b, absent, other])).toEqual({
      [a]: 'parquet',
      [b]: 'true',
      [absent]: 'cut-over',
      [other]: c.initial.other,
    });
  });

  it('removes a key written as null; removing an absent key changes nothing', async () => {
    const s = await c.make(tempDir());
    expect(await s.store.write({ [b]: null })).toEqual({ changed: true });
    expect(await s.store.read([a, b, other])).toEqual({ [a]: c.initial.a, [b]: null, [other]: c.initial.other });
    const before = s.content();
    expect(await s.store.write({ [b]: null, [absent]: null })).toEqual({ changed: false });
    expect(s.content()).toBe(before);
  });

  it('is idempotent: writing the values it already has writes nothing', async () => {
    const s = await c.make(tempDir());
    await s.store.write({ [a]: 'parquet', [absent]: '25' });
    const before = s.content();
    const writes = s.kubectlWrites();
    expect(await s.store.write({ [a]: 'parquet', [absent]: '25', [b]: c.initial.b })).toEqual({ changed: false });
    expect(s.content()).toBe(before);
    expect(s.kubectlWrites()).toBe(writes);
  });

  it('round trip: new values, then the old ones written back, give the same bytes as before', async () => {
    const s = await c.make(tempDir());
    const before = s.content();
    await s.store.write({ [a]: 'parquet', [b]: 'a value with spaces # and ; marks', [absent]: '50' });
    expect(s.content()).not.toBe(before);
    expect(await s.store.read([b])).toEqual({ [b]: 'a value with spaces # and ; marks' });
    await s.store.write({ [a]: c.initial.a, [b]: c.initial.b, [absent]: null });
    expect(s.content()).toBe(before);
  });

  it('snapshot and restoreSnapshot put the content back exactly, after changes and removals', async () => {
    const s = await c.make(tempDir());
    const before = s.content();
    const snapshot = await s.store.snapshot();
    await s.store.write({ [a]: 'parquet', [b]: null, [absent]: '100' });
    expect(await s.store.restoreSnapshot(snapshot)).toEqual({ changed: true });
    expect(s.content()).toBe(before);
    expect((await s.store.snapshot()).equals(snapshot)).toBe(true);
    const writes = s.kubectlWrites();
    expect(await s.store.restoreSnapshot(snapshot)).toEqual({ changed: false });
    expect(s.kubectlWrites()).toBe(writes);
  });
});

describe('ini store details', () => {
  const store = (text: string) => {
    const path = join(tempDir(), 'c.ini');
    writeFileSync(path, text);
    return { path, store: configStoreFromConfig({ type: 'ini', path }, (p) => p) };
  };

  it('reads what the ini package reads: quotes, escapes, inline comments, true/false', async () => {
    const text = '[s]\na = "x ; y"\nb = c \\; d ; note\nflag\nt = true\n';
    const { store: s } = store(text);
    const parsed = (await import('ini')).default.parse(text) as { s: Record<string, unknown> };
    const values = await s.read(['s.a', 's.b', 's.flag', 's.t']);
    expect(values).toEqual(Object.fromEntries(Object.entries(parsed.s).map(([k, v]) => [`s.${k}`, String(v)])));
  });

  it('keeps the value quoting, the inline comment and CRLF line ends of an edited line', async () => {
    const { path, store: s } = store('[s]\r\na = "old" \r\nb = 1 ; why\r\n');
    await s.write({ 's.a': 'new', 's.b': '2', 's.c': 'added' });
    expect(readFileSync(path, 'utf8')).toBe('[s]\r\na = "new" \r\nb = 2 ; why\r\nc=added\r\n');
  });

  it('a key in a new section, removed again, gives back the same bytes (also without a final line break)', async () => {
    for (const text of ['[s]\na = 1\n', '[s]\na = 1', 'top = 1\n']) {
      const { path, store: s } = store(text);
      await s.write({ 'new.k': 'v' });
      expect(await s.read(['new.k'])).toEqual({ 'new.k': 'v' });
      await s.write({ 'new.k': null });
      expect(readFileSync(path, 'utf8')).toBe(text);
    }
  });

  it('edits every copy of a key assigned twice (the last one is the one read)', async () => {
    const { path, store: s } = store('[s]\na = 1\na = 2\n');
    expect(await s.read(['s.a'])).toEqual({ 's.a': '2' });
    await s.write({ 's.a': '3' });
    expect(readFileSync(path, 'utf8')).toBe('[s]\na = 3\na = 3\n');
  });
});

describe('compose store details', () => {
  it('a flow-style environment is written through the Document API, comments kept', async () => {
    const file = join(tempDir(), 'compose.yaml');
    writeFileSync(file, '# top\nservices:\n  p:\n    environment: { A: "1" } # flow\n');
    const s = configStoreFromConfig({ type: 'compose', file, service: 'p' }, (p) => p);
    await s.write({ A: '2', B: 'x' });
    expect(await s.read(['A', 'B'])).toEqual({ A: '2', B: 'x' });
    expect(readFileSync(file, 'utf8')).toContain('# top');
  });

  it('a service without environment gets one', async () => {
    const file = join(tempDir(), 'compose.yaml');
    writeFileSync(file, 'services:\n  p:\n    image: x # kept\n');
    const s = configStoreFromConfig({ type: 'compose', file, service: 'p' }, (p) => p);
    await s.write({ A: 'true' });
    expect(await s.read(['A'])).toEqual({ A: 'true' });
    expect(readFileSync(file, 'utf8')).toContain('# kept');
  });

  it('an unknown service is EnvironmentInvalid', async () => {
    const file = join(tempDir(), 'compose.yaml');
    writeFileSync(file, 'services:\n  p: {}\n');
    const s = configStoreFromConfig({ type: 'compose', file, service: 'q' }, (p) => p);
    await expect(s.read(['A'])).rejects.toMatchObject({ type: 'EnvironmentInvalid' });
  });
});
