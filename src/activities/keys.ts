import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { PUBLIC_KEY_PATTERN } from '../shared/decisions.js';
import { canonicalName } from '../shared/names.js';
import { sha256 } from './digest.js';
import { writeFileAtomically } from './files.js';

/**
 * Ed25519 keys (node:crypto): people sign their decisions, workers sign the evidence chain head. A public key is
 * written as `ed25519:<32 raw bytes, base64>` in environment files; its id is the first 16 hex chars of the
 * sha256 of the raw bytes. Private keys are PKCS#8 PEM files, 0600 in a 0700 directory.
 */

/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows it */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export class KeyError extends Error {
  override name = 'KeyError';
}

const rawPublicKey = (key: KeyObject): Buffer =>
  key.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);

export function publicKeyText(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return `ed25519:${rawPublicKey(pub).toString('base64')}`;
}

export function keyIdOf(publicKey: string): string {
  return sha256(rawOf(publicKey)).slice(0, 16);
}

function rawOf(publicKey: string): Buffer {
  const text = publicKey.trim();
  if (!PUBLIC_KEY_PATTERN.test(text))
    throw new KeyError(`not an Ed25519 public key line ("ed25519:<base64>"): ${text.slice(0, 80)}`);
  return Buffer.from(text.slice('ed25519:'.length), 'base64');
}

export function publicKeyObject(publicKey: string): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, rawOf(publicKey)]), format: 'der', type: 'spki' });
}

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: string;
  keyId: string;
}

export function generateKeyPair(): KeyPair {
  const { privateKey } = generateKeyPairSync('ed25519');
  const publicKey = publicKeyText(privateKey);
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) };
}

/** Writes the private key (PEM, 0600, its directory 0700); refuses to replace an existing key unless told to. */
export async function writePrivateKey(
  path: string,
  pair: KeyPair,
  options: { overwrite?: boolean } = {},
): Promise<void> {
  if (
    !options.overwrite &&
    (await readFile(path).then(
      () => true,
      () => false,
    ))
  ) {
    throw new KeyError(`${path} already exists (keep it, or replace it with --force and update the environment files)`);
  }
  await writeFileAtomically(path, pair.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
}

export async function readPrivateKey(path: string): Promise<KeyPair> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new KeyError(`no key at ${path}`);
    throw err;
  }
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new KeyError(`${path}: not an Ed25519 private key`);
  const publicKey = publicKeyText(privateKey);
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) };
}

/** The key at `path`, created (and reported through `created`) when there is none yet: a worker's evidence key. */
export async function readOrCreatePrivateKey(path: string, created?: (pair: KeyPair) => void): Promise<KeyPair> {
  try {
    return await readPrivateKey(path);
  } catch (err) {
    if (!(err instanceof KeyError) || !err.message.startsWith('no key')) throw err;
    const pair = generateKeyPair();
    await writePrivateKey(path, pair);
    created?.(pair);
    return pair;
  }
}

export const signText = (pair: KeyPair, text: string): string =>
  sign(null, Buffer.from(text, 'utf8'), pair.privateKey).toString('base64');

/** Whether `signature` (base64) is a valid Ed25519 signature of `text` by `publicKey`; malformed input is false. */
export function verifyText(publicKey: string, text: string, signature: string): boolean {
  try {
    const bytes = Buffer.from(signature, 'base64');
    if (bytes.length !== 64) return false;
    return verify(null, Buffer.from(text, 'utf8'), publicKeyObject(publicKey), bytes);
  } catch {
    return false;
  }
}

export const newNonce = (): string => randomBytes(16).toString('hex');

/**
 * Where a person's keys live: $RUNBOOK_CONFIG_DIR, else $XDG_CONFIG_HOME/durable-runbooks, else
 * ~/.config/durable-runbooks; keys/<name>.key inside.
 */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RUNBOOK_CONFIG_DIR) return env.RUNBOOK_CONFIG_DIR;
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'durable-runbooks');
}

/** A key file name for a person (their name in canonical form, path-safe). */
export function personKeyPath(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const safe = canonicalName(name).replace(/[^\p{L}\p{N}._-]/gu, '_');
  return join(configDir(env), 'keys', `${safe}.key`);
}

/** The default evidence key of a worker: WORKER_KEY_FILE, else <config dir>/worker.key. */
export function workerKeyPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.WORKER_KEY_FILE || join(configDir(env), 'worker.key');
}
