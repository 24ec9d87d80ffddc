import type { Command } from 'commander';
import {
  configDir,
  generateKeyPair,
  personKeyPath,
  readPrivateKey,
  workerKeyPath,
  writePrivateKey,
} from '../../activities/keys.js';
import { CliError } from '../errors.js';

/** `runbook keys init|show`: Ed25519 keys for people (decisions) and workers (evidence). */
export function registerKeyCommands(program: Command): void {
  const keys = program
    .command('keys')
    .description(`Ed25519 keys for signed decisions and evidence (in ${configDir()})`);

  const pathFor = (o: { name?: string; worker?: boolean }): string => {
    if (o.worker) return workerKeyPath();
    if (!o.name) throw new CliError('give --name <approver> or --worker');
    return personKeyPath(o.name);
  };
  const line = (o: { name?: string; worker?: boolean }, publicKey: string): string =>
    o.worker
      ? `add to the environment file, evidence.workerKeys (or give auditors):\n  - "${publicKey}"`
      : `add to the environment file, approval.approvers (and abortBy, if listed):\n  - { name: ${o.name}, key: "${publicKey}" }`;

  keys
    .command('init')
    .description('create a key pair: the private key stays here (0600), the public key goes into environment files')
    .option('--name <approver>', 'a person (the name they approve as)')
    .option('--worker', "this machine's worker key (WORKER_KEY_FILE) that signs evidence")
    .option('--force', 'replace an existing key (the old public key stops verifying)')
    .action(async (o: { name?: string; worker?: boolean; force?: boolean }) => {
      const path = pathFor(o);
      const pair = generateKeyPair();
      await writePrivateKey(path, pair, { overwrite: o.force }).catch((err: Error) => {
        throw new CliError(err.message, 1);
      });
      console.log(`private key written to ${path} (0600); key id ${pair.keyId}`);
      console.log(line(o, pair.publicKey));
    });

  keys
    .command('show')
    .description('print the public key line of an existing key')
    .option('--name <approver>', 'a person')
    .option('--worker', "this machine's worker key")
    .action(async (o: { name?: string; worker?: boolean }) => {
      const pair = await readPrivateKey(pathFor(o)).catch((err: Error) => {
        throw new CliError(err.message, 1);
      });
      console.log(`key id ${pair.keyId}`);
      console.log(line(o, pair.publicKey));
    });
}
