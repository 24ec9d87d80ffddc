import type { Logger } from 'pino';
import type { CommandRunner } from '../adapters/types.js';
import type { KeyPair } from '../keys.js';

/** What the SQLite activities need from the worker. */
export interface SqliteDeps {
  environmentsDir: string;
  log: Logger;
  runner?: CommandRunner;
  /** signs backup manifests; its public key (and the environment's evidence.workerKeys) is trusted on restore */
  signingKey: KeyPair;
}
