import { join } from 'node:path';
import { readOrCreatePrivateKey, type KeyPair } from '../activities/keys.js';
import { writeFileAtomically } from '../activities/files.js';

/**
 * Demo keys in `<dir>` (.data/keys): `<name>.key` (private, 0600) and `<name>.pub` (the public key line that
 * environments/demo*.yaml name with keyFile / evidence.workerKeys). Created once, kept across runs.
 */
export async function ensureDemoKey(dir: string, name: string): Promise<KeyPair> {
  const pair = await readOrCreatePrivateKey(join(dir, `${name}.key`));
  await writeFileAtomically(join(dir, `${name}.pub`), `${pair.publicKey}\n`, { mode: 0o644 });
  return pair;
}
