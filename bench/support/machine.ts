import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { temporalCli } from '../../src/dev/temporal-server.js';

export interface Machine {
  cpu: string;
  cpus: number;
  memory: string;
  os: string;
  node: string;
  temporal: string;
}

/** The machine the bench runs on, as BENCHMARKS.md describes it. */
export function machine(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cpus: cpus.length,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    temporal: temporalVersion(),
  };
}

/** A report's Machine table: its heading and first rows (CPU, memory, OS, Node); the section adds its own rows. */
export const machineRows = (m: Machine): string[] => [
  '### Machine',
  '',
  '| | |',
  '|---|---|',
  `| CPU | ${m.cpu} × ${m.cpus} |`,
  `| Memory | ${m.memory} |`,
  `| OS | ${m.os} |`,
  `| Node | ${m.node} |`,
];

function temporalVersion(): string {
  let version = 'unknown';
  try {
    version = execFileSync(temporalCli, ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim();
  } catch (err) {
    version = `unknown (${(err as Error).message})`;
  }
  const stamp = `${temporalCli}.version`;
  if (existsSync(stamp)) version += `; built from github.com/temporalio/cli ${readFileSync(stamp, 'utf8').trim()}`;
  return version;
}

/** The run's date as BENCHMARKS.md names it (ISO, whole seconds). */
export const runDate = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
