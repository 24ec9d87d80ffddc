import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { serviceFor } from '../src/activities/adapters/index.js';
import { BASE_SERVICE_ENV, ProcessService } from '../src/activities/adapters/process.js';
import { loadTarget } from '../src/activities/environment.js';
import { FileLogSource } from '../src/activities/adapters/file-logs.js';
import { demoCommand, INITIAL_FLAGS } from '../src/demo/environment.js';
import { freePort } from '../src/dev/ports.js';
import { until } from './support/wait.js';

/** The `process` service adapter against the real demo service: pid file, SIGHUP, restart, stop. */
const services: ProcessService[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const s of services.splice(0)) await s.stop();
  // after the services stopped: their pid, env and log files live here
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

async function demo(reload: 'sighup' | 'restart') {
  const dir = tempDir('process-service-');
  const envFile = join(dir, 'web.env');
  writeFileSync(envFile, INITIAL_FLAGS);
  const port = await freePort();
  const service = new ProcessService({
    pidFile: join(dir, 'web.pid'),
    command: demoCommand(envFile, port),
    logFile: join(dir, 'web.log'),
    reload,
    stopTimeoutMs: 3000,
  });
  services.push(service);
  const stats = async () => {
    for (let i = 0; i < 100; i++) {
      const r = await fetch(`http://127.0.0.1:${port}/stats`).then(
        (x) => x.json() as Promise<{ pid: number; reloads: number }>,
        () => undefined,
      );
      if (r) return r;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error('service not answering');
  };
  return { dir, envFile, port, service, stats, logFile: join(dir, 'web.log'), pidFile: join(dir, 'web.pid') };
}

describe('process service adapter', () => {
  it('starts once, reloads with SIGHUP in place, restarts with a new pid, stops and removes the pid file', async () => {
    const d = await demo('sighup');
    expect(await d.service.status()).toEqual({ running: false, detail: 'not running' });
    await d.service.start();
    await d.service.start();
    const first = await d.stats();
    expect((await d.service.status()).detail).toBe(`pid ${first.pid}`);
    await d.service.reload();
    // the SIGHUP is handled in the service's own time: wait until it counts it, then check
    const after = await until('the SIGHUP counted', async () => {
      const s = await d.stats();
      return s.reloads > 0 ? s : undefined;
    });
    expect(after).toMatchObject({ pid: first.pid, reloads: 1 });
    await d.service.restart();
    const second = await d.stats();
    expect(second.pid).not.toBe(first.pid);
    expect(second.reloads).toBe(0);
    await d.service.stop();
    expect(existsSync(d.pidFile)).toBe(false);
    expect((await d.service.status()).running).toBe(false);
    await expect(d.service.reload()).rejects.toThrow(/not running, cannot send SIGHUP/);
  });

  it('with reload: restart, a reload is a full restart', async () => {
    const d = await demo('restart');
    await d.service.start();
    const first = await d.stats();
    await d.service.reload();
    expect((await d.stats()).pid).not.toBe(first.pid);
  });

  it('the log source counts only matching lines written after its cursor', async () => {
    const d = await demo('sighup');
    await d.service.start();
    const write = () => fetch(`http://127.0.0.1:${d.port}/write`, { method: 'POST' }).then((r) => r.json());
    await d.stats();
    await write();
    const logs = new FileLogSource(d.logFile);
    const cursor = await logs.cursor();
    expect(await logs.matchesSince(cursor, /dual_write_scheduled/)).toEqual({ count: 0, sample: [] });
    for (let i = 0; i < 3; i++) await write();
    const seen = await logs.matchesSince(cursor, /dual_write_scheduled/);
    expect(seen.count).toBe(3);
    expect(seen.sample.map((l) => /write_id=(\d+)/.exec(l)?.[1])).toEqual(['2', '3', '4']);
  });
});

describe('what a managed process sees of the worker', () => {
  it('the allow-listed basics, the variables the target passes and its literal env; never the worker secrets', async () => {
    const dir = tempDir('process-env-');
    const out = join(dir, 'env.json');
    const script = `require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.env)); setInterval(() => {}, 1000)`;
    writeFileSync(
      join(dir, 'envtest.yaml'),
      stringify({
        targets: {
          svc: {
            service: {
              type: 'process',
              command: [process.execPath, '-e', script],
              pidFile: join(dir, 'svc.pid'),
              passEnv: ['SERVICE_DATABASE_URL'],
              env: { APP_MODE: 'demo' },
            },
          },
        },
      }),
    );
    process.env.WORKER_SECRET_TOKEN = 'do-not-leak';
    process.env.SERVICE_DATABASE_URL = 'postgres://service@db/app';
    try {
      const service = serviceFor(await loadTarget(dir, 'envtest', 'svc'));
      services.push(service as ProcessService);
      await service.start();
      for (let i = 0; i < 100 && !existsSync(out); i++) await new Promise((r) => setTimeout(r, 50));
      const seen = JSON.parse(readFileSync(out, 'utf8')) as Record<string, string>;
      expect(seen.WORKER_SECRET_TOKEN).toBeUndefined();
      expect(seen.SERVICE_DATABASE_URL).toBe('postgres://service@db/app');
      expect(seen.APP_MODE).toBe('demo');
      expect(seen.PATH).toBe(process.env.PATH);
      expect(
        Object.keys(seen).filter((k) => !BASE_SERVICE_ENV.includes(k) && !/^(SERVICE_DATABASE_URL|APP_MODE)$/.test(k)),
      ).toEqual(Object.keys(seen).filter((k) => /^(PWD|SHLVL|_)$/.test(k)));
    } finally {
      delete process.env.WORKER_SECRET_TOKEN;
      delete process.env.SERVICE_DATABASE_URL;
    }
  });
});
