import { randomBytes } from 'node:crypto';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import type { FlagStore, FlagValues } from './types.js';

/** One line of an env file: comments, blanks and unparsable lines are kept verbatim. */
interface EnvLine {
  raw: string;
  key?: string;
  /** text before the value: "export KEY = " */
  head?: string;
  quote?: '"' | "'" | '';
  value?: string;
  /** text after the value: spaces and an inline comment */
  tail?: string;
}

const ASSIGNMENT = /^(\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*)(.*)$/;

function parseLine(raw: string): EnvLine {
  const m = ASSIGNMENT.exec(raw);
  if (!m || raw.trimStart().startsWith('#')) return { raw };
  const [, head, key, rest] = m as unknown as [string, string, string, string];
  const q = rest[0];
  if (q === '"' || q === "'") {
    const end = rest.indexOf(q, 1);
    if (end > 0) return { raw, key, head, quote: q, value: rest.slice(1, end), tail: rest.slice(end + 1) };
  }
  const hash = rest.search(/\s+#/);
  const value = hash >= 0 ? rest.slice(0, hash) : rest;
  return { raw, key, head, quote: '', value: value.trimEnd(), tail: rest.slice(value.trimEnd().length) };
}

function render(line: EnvLine, value: string): string {
  const quote = line.quote || (/[\s#"'$\\]/.test(value) ? '"' : '');
  const escaped = quote === '"' ? value.replace(/(["\\$])/g, '\\$1') : value;
  return `${line.head}${quote}${escaped}${quote}${line.tail ?? ''}`;
}

export function parseEnvFile(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = parseLine(raw.replace(/\r$/, ''));
    if (line.key !== undefined) values.set(line.key, line.quote === '"' ? line.value!.replace(/\\(["\\$])/g, '$1') : line.value!);
  }
  return values;
}

/** Edits only the changed assignments; comments, order, quoting and untouched lines stay byte-identical. */
export function editEnvFile(text: string, changes: FlagValues): string {
  const lines = text.split('\n');
  const parsed = lines.map((raw) => parseLine(raw));
  const remaining = new Map(Object.entries(changes));
  const out: string[] = [];
  for (const line of parsed) {
    if (line.key !== undefined && remaining.has(line.key)) {
      const value = remaining.get(line.key);
      if (value === null) continue;
      out.push(render(line, value!));
      // a key assigned twice: the last assignment wins when the file is read, so keep editing every copy
      continue;
    }
    out.push(line.raw);
  }
  for (const line of parsed) if (line.key !== undefined) remaining.delete(line.key);
  const additions = [...remaining].filter(([, v]) => v !== null).map(([k, v]) => render({ raw: '', head: `${k}=` }, v!));
  if (additions.length) {
    const endsWithNewline = out.length > 0 && out[out.length - 1] === '';
    if (endsWithNewline) out.splice(out.length - 1, 0, ...additions);
    else out.push(...additions, '');
  }
  return out.join('\n');
}

export class EnvFileFlagStore implements FlagStore {
  constructor(private readonly path: string) {}

  describe(): string {
    return `env-file ${this.path}`;
  }

  async read(names: string[]): Promise<FlagValues> {
    const values = parseEnvFile(await readFile(this.path, 'utf8'));
    return Object.fromEntries(names.map((n) => [n, values.get(n) ?? null]));
  }

  async write(values: FlagValues): Promise<{ changed: boolean }> {
    const before = await readFile(this.path, 'utf8');
    const current = parseEnvFile(before);
    const needed = Object.entries(values).filter(([k, v]) => (current.get(k) ?? null) !== v);
    if (needed.length === 0) return { changed: false };
    const after = editEnvFile(before, Object.fromEntries(needed));
    await atomicWrite(this.path, after);
    return { changed: true };
  }
}

/** temp file in the same directory, fsync, rename: readers see the old or the new file, never half. */
export async function atomicWrite(path: string, text: string): Promise<void> {
  const mode = (await stat(path).catch(() => undefined))?.mode;
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(tmp, 'w', mode ?? 0o644);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
