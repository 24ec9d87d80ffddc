import { ApplicationFailure } from '@temporalio/common';
import { readFile } from 'node:fs/promises';
import { isMap, isScalar, isSeq, parse, parseDocument, Scalar, type Document } from 'yaml';
import { ErrorType } from '../../../shared/constants.js';
import type { ConfigStoreConfig } from '../../../shared/schemas.js';
import { writeFileAtomically } from '../../files.js';
import type { ConfigStore, ConfigValues } from '../types.js';
import { readSnapshotFile, restoreFileSnapshot } from './file-snapshot.js';

type ComposeStoreConfig = Extract<ConfigStoreConfig, { type: 'compose' }>;

// A compose file's `services.<service>.environment`, map form (`KEY: value`) or list form (`- KEY=value`).
// The `yaml` Document API finds the nodes and their source ranges; a block-style environment is then edited in
// the source text itself (a value's scalar replaced in its own quoting, a removed entry's line cut, a new entry
// added after the last one with its indentation), so comments, quoting and layout stay byte for byte — which
// Document.toString() does not promise (it re-renders the whole file). Only an environment that is missing or in
// flow style (`{A: 1}`, `[A=1]`) is written through the Document API (comments still kept, layout re-rendered).

interface Edit {
  start: number;
  end: number;
  text: string;
}

const lineStart = (src: string, at: number) => src.lastIndexOf('\n', at - 1) + 1;
const lineEnd = (src: string, at: number) => {
  const nl = src.indexOf('\n', at);
  return nl < 0 ? src.length : nl + 1;
};

/** `value` as a scalar in the given style; plain only where YAML reads it back as the same text. */
function renderScalar(
  value: string,
  type: Scalar.Type | undefined,
  context: 'map' | 'seq',
  wasString: boolean,
): string {
  if (type === Scalar.QUOTE_SINGLE && !/[\r\n]/.test(value)) return `'${value.replace(/'/g, "''")}'`;
  if (type === Scalar.PLAIN || type === undefined) {
    try {
      const parsed: unknown =
        context === 'map' ? (parse(`k: ${value}`) as { k: unknown }).k : (parse(`- ${value}`) as unknown[])[0];
      const plainOk =
        value !== '' &&
        !/[\r\n]/.test(value) &&
        value.trim() === value &&
        parsed !== null &&
        typeof parsed !== 'object' &&
        String(parsed) === value &&
        // a new entry, or one that held a string, stays a string (compose wants strings; `true` would be a boolean)
        (typeof parsed === 'string' || (!wasString && type === Scalar.PLAIN));
      if (plainOk) return value;
    } catch {
      // not a plain scalar: quoted below
    }
  }
  return JSON.stringify(value);
}

function environmentOf(doc: Document, service: string, where: string) {
  const svc = doc.getIn(['services', service], true);
  if (!isMap(svc))
    throw ApplicationFailure.nonRetryable(
      `${where}: services.${service}: no such service`,
      ErrorType.EnvironmentInvalid,
    );
  const env = svc.get('environment', true);
  if (env !== undefined && env !== null && !isMap(env) && !isSeq(env) && !(isScalar(env) && env.value === null))
    throw ApplicationFailure.nonRetryable(
      `${where}: services.${service}.environment is neither a map nor a list`,
      ErrorType.EnvironmentInvalid,
    );
  return isMap(env) || isSeq(env) ? env : undefined;
}

export function readComposeEnvironment(
  text: string,
  service: string,
  where = 'compose file',
): Map<string, string | null> {
  const doc = parseDocument(text);
  if (doc.errors.length) throw new Error(`${where}: not valid YAML: ${doc.errors[0]!.message}`);
  const env = environmentOf(doc, service, where);
  const values = new Map<string, string | null>();
  if (isMap(env)) {
    for (const pair of env.items) {
      const value = isScalar(pair.value) ? pair.value.value : pair.value;
      values.set(
        String(isScalar(pair.key) ? pair.key.value : pair.key),
        value === null || value === undefined ? null : String(value),
      );
    }
  } else if (isSeq(env)) {
    for (const item of env.items) {
      const text = String(isScalar(item) ? item.value : item);
      const eq = text.indexOf('=');
      values.set(eq < 0 ? text : text.slice(0, eq), eq < 0 ? null : text.slice(eq + 1));
    }
  }
  return values;
}

/** The edits for `changes` in a block-style environment; undefined when the source cannot be edited in place. */
function sourceEdits(src: string, doc: Document, service: string, changes: ConfigValues): Edit[] | undefined {
  const env = environmentOf(doc, service, 'compose file');
  if (!env || env.flow || env.items.length === 0) return undefined;
  const edits: Edit[] = [];
  const present = new Set<string>();
  let lastEnd = 0;
  let prefix = '';
  const remove = (start: number, end: number) =>
    edits.push({ start: lineStart(src, start), end: lineEnd(src, end), text: '' });
  if (isMap(env)) {
    for (const pair of env.items) {
      if (!isScalar(pair.key) || !pair.key.range) return undefined;
      const key = String(pair.key.value);
      const value = isScalar(pair.value) ? pair.value : undefined;
      const end = value?.range?.[1] ?? pair.key.range[1];
      lastEnd = Math.max(lastEnd, end);
      prefix = src.slice(lineStart(src, pair.key.range[0]), pair.key.range[0]);
      if (!(key in changes)) continue;
      present.add(key);
      const wanted = changes[key];
      if (wanted === null) remove(pair.key.range[0], end);
      else if (value?.range && value.value !== null) {
        const rendered = renderScalar(wanted!, value.type, 'map', typeof value.value === 'string');
        edits.push({ start: value.range[0], end: value.range[1], text: rendered });
      } else edits.push({ start: end, end, text: ` ${renderScalar(wanted!, undefined, 'map', true)}` });
    }
    if (!/^\s*$/.test(prefix)) return undefined;
  } else {
    for (const item of env.items) {
      if (!isScalar(item) || !item.range) return undefined;
      const text = String(item.value);
      const eq = text.indexOf('=');
      const key = eq < 0 ? text : text.slice(0, eq);
      lastEnd = Math.max(lastEnd, item.range[1]);
      prefix = src.slice(lineStart(src, item.range[0]), item.range[0]);
      if (!(key in changes)) continue;
      present.add(key);
      const wanted = changes[key];
      if (wanted === null) remove(item.range[0], item.range[1]);
      else
        edits.push({
          start: item.range[0],
          end: item.range[1],
          text: renderScalar(`${key}=${wanted}`, item.type, 'seq', true),
        });
    }
    if (!/^\s*-\s+$/.test(prefix)) return undefined;
  }
  const additions = Object.entries(changes)
    .filter(([k, v]) => v !== null && !present.has(k))
    .map(([k, v]) =>
      isMap(env)
        ? `${prefix}${k}: ${renderScalar(v!, undefined, 'map', true)}`
        : `${prefix}${renderScalar(`${k}=${v}`, undefined, 'seq', true)}`,
    );
  if (additions.length) {
    const at = lineEnd(src, lastEnd);
    const needsBreak = at === src.length && !src.endsWith('\n');
    edits.push({ start: at, end: at, text: needsBreak ? `\n${additions.join('\n')}` : `${additions.join('\n')}\n` });
  }
  return edits;
}

export function editComposeEnvironment(src: string, service: string, changes: ConfigValues): string {
  const doc = parseDocument(src);
  if (doc.errors.length) throw new Error(`compose file: not valid YAML: ${doc.errors[0]!.message}`);
  const edits = sourceEdits(src, doc, service, changes);
  if (edits) {
    let out = src;
    for (const e of edits.sort((a, b) => b.start - a.start)) out = out.slice(0, e.start) + e.text + out.slice(e.end);
    return out;
  }
  // missing or flow-style environment: through the Document API
  const env = environmentOf(doc, service, 'compose file');
  if (isSeq(env)) {
    for (const [k, v] of Object.entries(changes)) {
      const i = env.items.findIndex((item) => String(isScalar(item) ? item.value : item).split('=')[0] === k);
      if (v === null) {
        if (i >= 0) env.items.splice(i, 1);
      } else if (i >= 0) env.items[i] = doc.createNode(`${k}=${v}`);
      else env.items.push(doc.createNode(`${k}=${v}`));
    }
  } else {
    for (const [k, v] of Object.entries(changes)) {
      if (v === null) doc.deleteIn(['services', service, 'environment', k]);
      else doc.setIn(['services', service, 'environment', k], v);
    }
  }
  return doc.toString();
}

export class ComposeConfigStore implements ConfigStore {
  constructor(private readonly config: ComposeStoreConfig) {}

  describe(): string {
    return `compose ${this.config.file} service ${this.config.service}`;
  }

  async read(keys: string[]): Promise<ConfigValues> {
    const values = readComposeEnvironment(
      await readFile(this.config.file, 'utf8'),
      this.config.service,
      this.describe(),
    );
    return Object.fromEntries(keys.map((k) => [k, values.get(k) ?? null]));
  }

  async write(values: ConfigValues): Promise<{ changed: boolean }> {
    const before = await readFile(this.config.file, 'utf8');
    const current = readComposeEnvironment(before, this.config.service, this.describe());
    const needed = Object.entries(values).filter(
      ([k, v]) => (current.get(k) ?? null) !== v || (v === null && current.has(k)),
    );
    if (needed.length === 0) return { changed: false };
    const after = editComposeEnvironment(before, this.config.service, Object.fromEntries(needed));
    const check = readComposeEnvironment(after, this.config.service, this.describe());
    const wrong = needed.filter(([k, v]) => (check.get(k) ?? null) !== v || (v === null && check.has(k)));
    if (wrong.length)
      throw new Error(`${this.describe()}: the edit would not read back: ${wrong.map(([k]) => k).join(', ')}`);
    await writeFileAtomically(this.config.file, after, { mode: 'keep' });
    return { changed: true };
  }

  snapshot(): Promise<Buffer> {
    return readSnapshotFile(this.config.file);
  }

  restoreSnapshot(content: Buffer): Promise<{ changed: boolean }> {
    return restoreFileSnapshot(this.config.file, content);
  }
}
