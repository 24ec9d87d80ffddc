import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { repoRoot } from '../dev/temporal-server.js';

export const INITIAL_FLAGS = [
  '# demo web service flags (edited by durable-runbooks; comments and order are kept)',
  'TEAM_VNEXT_DUAL_WRITE_ENABLED=true',
  '# strict mode: a failed dual write fails the request',
  'TEAM_VNEXT_DUAL_WRITE_STRICT_MODE=true',
  'TEAM_VNEXT_LEGACY_WRITE_BLOCKED=false',
  'APP_NAME="demo web"   # not a flag',
  '',
].join('\n');

export interface DemoTargetFiles {
  envFile: string;
  pidFile: string;
  logFile: string;
}

export const demoFiles = (dataDir: string): DemoTargetFiles => ({
  envFile: join(dataDir, 'web.env'),
  pidFile: join(dataDir, 'web.pid'),
  logFile: join(dataDir, 'web.log'),
});

/** Resets the demo service's flag file to dual-write on, strict on, legacy writes allowed. */
export function resetDemoFlags(dataDir: string): DemoTargetFiles {
  const files = demoFiles(dataDir);
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(files.envFile, INITIAL_FLAGS);
  return files;
}

/** The demo service's command line; its writes go to `table` in the database named by DEMO_DATABASE_URL. */
export function demoCommand(envFile: string, port: number, table = 'demo_writes'): string[] {
  return [
    process.execPath,
    join(repoRoot, 'src/demo/service.mjs'),
    '--env-file',
    envFile,
    '--port',
    String(port),
    '--table',
    table,
  ];
}

export interface DemoEnvironmentOptions {
  environmentsDir: string;
  name: string;
  dataDir: string;
  port: number;
  approval?: Record<string, unknown>;
  escalation?: Array<Record<string, unknown>>;
  notifications?: Record<string, unknown>;
  health?: Record<string, unknown>;
  quietWindow?: string;
  /** table for the service's writes (default: writes_<name>) */
  table?: string;
  /** more top-level sections (lockWait, evidence, …) */
  sections?: Record<string, unknown>;
  /** more targets beside `web` */
  targets?: Record<string, unknown>;
}

/** The top of a test environment file: name, approval (any one of alice, bob, carol), escalation, notifications. */
export function environmentHeader(o: {
  name: string;
  approval?: Record<string, unknown>;
  escalation?: Array<Record<string, unknown>>;
  notifications?: Record<string, unknown>;
  sections?: Record<string, unknown>;
}): Record<string, unknown> {
  return {
    name: o.name,
    approval: o.approval ?? { approvers: ['alice', 'bob', 'carol'], quorum: 1, timeout: '1h' },
    escalation: o.escalation ?? [{ level: 1, after: '0s', contact: 'on-call' }],
    notifications: o.notifications ?? { console: { type: 'log' } },
    ...o.sections,
  };
}

/** Writes an environment file like environments/demo.yaml with its own port and data directory (tests). */
export function writeDemoEnvironment(o: DemoEnvironmentOptions): DemoTargetFiles & { file: string } {
  const files = resetDemoFlags(o.dataDir);
  const doc = {
    ...environmentHeader(o),
    targets: {
      web: {
        flags: {
          store: { type: 'env-file', path: files.envFile },
          names: {
            dualWriteEnabled: 'TEAM_VNEXT_DUAL_WRITE_ENABLED',
            strictMode: 'TEAM_VNEXT_DUAL_WRITE_STRICT_MODE',
            legacyWriteBlocked: 'TEAM_VNEXT_LEGACY_WRITE_BLOCKED',
          },
        },
        service: {
          type: 'process',
          command: demoCommand(files.envFile, o.port, o.table ?? `writes_${o.name.replace(/[^a-z0-9]/g, '_')}`),
          passEnv: ['DEMO_DATABASE_URL'],
          pidFile: files.pidFile,
          logFile: files.logFile,
          reload: 'sighup',
        },
        health: {
          http: { url: `http://127.0.0.1:${o.port}/health`, expectBody: 'healthy', within: '10s', ...o.health },
          flagsUrl: `http://127.0.0.1:${o.port}/flags`,
          logs: { type: 'file', path: files.logFile },
          quietWindow: o.quietWindow ?? '2s',
        },
      },
      ...o.targets,
    },
  };
  mkdirSync(o.environmentsDir, { recursive: true });
  const file = join(o.environmentsDir, `${o.name}.yaml`);
  writeFileSync(file, stringify(doc));
  return { ...files, file };
}
