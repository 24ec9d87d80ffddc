import { readFile } from 'node:fs/promises';
import { writeFileAtomically } from '../files.js';
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

const ASSIGNMENT = /^(\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=)(.*)$/;
/** a double-quoted value ends at the first quote that is not escaped with a backslash */
const DOUBLE_QUOTED = /^"((?:[^"\\]|\\.)*)"/;

/** `raw` is one line without its line break (and without the "\r" of a CRLF file). */
function parseLine(raw: string): EnvLine {
  const m = ASSIGNMENT.exec(raw);
  if (!m || raw.trimStart().startsWith('#')) return { raw };
  const [, assign, key, afterEquals] = m as unknown as [string, string, string, string];
  // spaces after "=" belong to the head, unless only an inline comment follows: "KEY= # note" is an empty value
  const spaces = /^\s*/.exec(afterEquals)![0];
  const commentOnly = afterEquals.startsWith('#', spaces.length);
  const head = commentOnly ? assign : assign + spaces;
  const rest = commentOnly ? afterEquals : afterEquals.slice(spaces.length);
  if (rest[0] === '"') {
    const dq = DOUBLE_QUOTED.exec(rest);
    if (dq) return { raw, key, head, quote: '"', value: dq[1]!, tail: rest.slice(dq[0].length) };
  } else if (rest[0] === "'") {
    const end = rest.indexOf("'", 1);
    if (end > 0) return { raw, key, head, quote: "'", value: rest.slice(1, end), tail: rest.slice(end + 1) };
  }
  const hash = rest.search(/\s+#/);
  const value = hash >= 0 ? rest.slice(0, hash) : rest;
  return { raw, key, head, quote: '', value: value.trimEnd(), tail: rest.slice(value.trimEnd().length) };
}

function render(line: EnvLine, value: string): string {
  if (/[\r\n]/.test(value)) throw new Error(`env file values cannot contain line breaks: ${JSON.stringify(value)}`);
  // a single-quoted value cannot hold a single quote: switch that line to double quotes
  const keep = line.quote === "'" && value.includes("'") ? '' : line.quote;
  const quote = keep || (/[\s#"'$\\]/.test(value) ? '"' : '');
  const escaped = quote === '"' ? value.replace(/(["\\$])/g, '\\$1') : value;
  return `${line.head}${quote}${escaped}${quote}${line.tail ?? ''}`;
}

export function parseEnvFile(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = parseLine(raw.replace(/\r$/, ''));
    if (line.key !== undefined)
      values.set(line.key, line.quote === '"' ? line.value!.replace(/\\(["\\$])/g, '$1') : line.value!);
  }
  return values;
}

/** Edits only the changed assignments; comments, order, quoting and untouched lines stay byte-identical. */
export function editEnvFile(text: string, changes: FlagValues): string {
  const remaining = new Map(Object.entries(changes));
  const present = new Set<string>();
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const cr = raw.endsWith('\r') ? '\r' : '';
    const line = parseLine(cr ? raw.slice(0, -1) : raw);
    if (line.key !== undefined) present.add(line.key);
    if (line.key !== undefined && remaining.has(line.key)) {
      const value = remaining.get(line.key);
      if (value === null) continue;
      out.push(render(line, value!) + cr);
      // a key assigned twice: the last assignment wins when the file is read, so keep editing every copy
      continue;
    }
    out.push(raw);
  }
  const additions = [...remaining]
    .filter(([k, v]) => v !== null && !present.has(k))
    .map(([k, v]) => render({ raw: '', head: `${k}=` }, v!));
  if (additions.length) {
    const last = out.length - 1;
    if (last >= 0 && out[last] === '') {
      // the file ends with a line break (or is empty): insert before it, with the file's own line ending
      const cr = last > 0 && out[last - 1]!.endsWith('\r') ? '\r' : '';
      out.splice(last, 0, ...additions.map((a) => a + cr));
    } else {
      // no final line break: add none either, so that removing the keys again restores the file byte for byte
      out.push(...additions);
    }
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
    // the service's file: it keeps its mode and owner
    await writeFileAtomically(this.path, after, { mode: 'keep' });
    return { changed: true };
  }
}
