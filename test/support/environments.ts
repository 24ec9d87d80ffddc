import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

/** Writes `<environmentsDir>/<name>.yaml` (the directory is created); returns its path. */
export function writeEnvironment(
  environmentsDir: string,
  environment: { name: string } & Record<string, unknown>,
): string {
  mkdirSync(environmentsDir, { recursive: true });
  const file = join(environmentsDir, `${environment.name}.yaml`);
  writeFileSync(file, stringify(environment));
  return file;
}

export interface PairEnvironment {
  /** the two stores' configurations (environment-file form) */
  a: unknown;
  b: unknown;
  /** the work directory, unless `dualWrite` names a workStore (a target keeps exactly one of them) */
  workDir: string;
  /** more of the dualWrite section (batchSize, workStore, labels, …) */
  dualWrite?: Record<string, unknown>;
  escalation?: unknown[];
  extraTargets?: Record<string, unknown>;
}

/** An environment whose target "objects" is the dual-write pair a ↔ b; approval by any one of alice, bob, carol. */
export function writePairEnvironment(environmentsDir: string, name: string, pair: PairEnvironment): string {
  const dualWrite = pair.dualWrite ?? {};
  return writeEnvironment(environmentsDir, {
    name,
    approval: { approvers: ['alice', 'bob', 'carol'], quorum: 1, timeout: '1h' },
    escalation: pair.escalation ?? [{ level: 1, after: '0s' }],
    targets: {
      objects: {
        dualWrite: { a: pair.a, b: pair.b, ...(dualWrite.workStore ? {} : { workDir: pair.workDir }), ...dualWrite },
      },
      ...pair.extraTargets,
    },
  });
}
