import { ApplicationFailure } from '@temporalio/common';
import { readFile } from 'node:fs/promises';
import ini from 'ini';
import { ErrorType } from '../../../shared/constants.js';
import type { ConfigStore, ConfigValues } from '../types.js';
import { readSnapshotFile, restoreFileSnapshot } from './file-snapshot.js';
import { writeFileAtomically } from '../../files.js';

// The INI store. Values are decoded and encoded with the `ini` package (ini.unsafe: quotes, escapes, inline
// comments; ini.safe: quoting where a value needs it), and lines are classified with the same pattern its
// decoder uses — so a value reads here as `ini` reads it. The package cannot keep a file's layout: ini.stringify
// writes the whole file anew from the parsed object (comments and blank lines dropped, `k = v` becomes `k=v`,
// sections reordered), and ini.parse drops comments. So the edit itself is a minimal per-line one: only the
// value text of the changed assignments is replaced (their `key = ` and any inline comment stay), a removed key
// loses its line, a new key gets one line after its section's last assignment — everything else stays byte for byte.

/** ini.decode's own line pattern: `[section]` or `key[=value]` */
const LINE = /^\[([^\]]*)\]\s*$|^([^=]+)(=(.*))?$/i;
const COMMENT_OR_BLANK = /^\s*([;#]|$)/;

interface IniLine {
  /** the line without its "\r" */
  text: string;
  cr: string;
  /** section header: the section's name */
  header?: string;
  /** assignment: `section.key` (a key before any section: `key`) */
  name?: string;
  /** assignment: everything before the value (`key = `), the value text, everything after (` ; note`) */
  head?: string;
  raw?: string;
  tail?: string;
}

/** `section.key` → [section, key]; the section is everything before the last dot ("" : before any section) */
export function splitIniKey(name: string): [string, string] {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? ['', name] : [name.slice(0, dot), name.slice(dot + 1)];
}

/** where an unquoted value's inline comment starts (ini.unsafe stops at the first unescaped ; or #) */
function commentStart(value: string): number {
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '\\') i++;
    else if (value[i] === ';' || value[i] === '#') return i;
  }
  return -1;
}

const isQuoted = (v: string) => v.length > 1 && /^(".*"|'.*')$/s.test(v);

function parseLines(text: string): IniLine[] {
  let section = '';
  return text.split('\n').map((rawLine) => {
    const cr = rawLine.endsWith('\r') ? '\r' : '';
    const line = cr ? rawLine.slice(0, -1) : rawLine;
    if (COMMENT_OR_BLANK.test(line)) return { text: line, cr };
    const m = LINE.exec(line);
    if (!m) return { text: line, cr };
    if (m[1] !== undefined) {
      section = ini.unsafe(m[1]);
      return { text: line, cr, header: section };
    }
    const key = ini.unsafe(m[2]!);
    const name = section ? `${section}.${key}` : key;
    if (m[3] === undefined) return { text: line, cr, name, head: line, raw: '', tail: '' };
    const afterEquals = m[4]!;
    const head = line.slice(0, line.length - afterEquals.length) + /^\s*/.exec(afterEquals)![0];
    const rest = line.slice(head.length);
    const trimmed = rest.trimEnd();
    const cut = isQuoted(trimmed) ? -1 : commentStart(rest);
    const valueText = (cut < 0 ? rest : rest.slice(0, cut)).trimEnd();
    return { text: line, cr, name, head, raw: valueText, tail: rest.slice(valueText.length) };
  });
}

/** the value as the `ini` package reads it, as text (it turns true/false/null into JSON values) */
function decodeValue(line: IniLine): string {
  if (line.head === line.text && line.raw === '') return 'true'; // `key` alone: ini reads it as true
  return String(ini.unsafe(line.raw!));
}

export function readIni(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of parseLines(text)) if (line.name !== undefined) values.set(line.name, decodeValue(line));
  return values;
}

/** The value text for `value`, in the quoting the line had; checked by decoding it back. */
function encodeValue(value: string, was: string | undefined): string {
  let text: string;
  if (was?.startsWith('"') && isQuoted(was)) text = JSON.stringify(value);
  else if (was?.startsWith("'") && isQuoted(was) && !value.includes("'")) text = `'${value}'`;
  else text = ini.safe(value);
  if (String(ini.unsafe(text)) !== value)
    throw ApplicationFailure.nonRetryable(
      `the INI format cannot hold the value ${JSON.stringify(value)}`,
      ErrorType.InvalidInput,
    );
  return text;
}

/** Sets (null: removes) keys, changing only their lines; see the comment at the top of this file. */
export function editIni(text: string, changes: ConfigValues): string {
  const lines = parseLines(text);
  const present = new Set<string>();
  const out: IniLine[] = [];
  for (const line of lines) {
    if (line.name !== undefined && line.name in changes) {
      present.add(line.name);
      const value = changes[line.name];
      if (value === null) continue;
      const head = line.head === line.text && line.raw === '' ? `${line.text}=` : line.head!;
      // a key assigned twice: the last one wins when read, so every copy is edited
      out.push({ ...line, text: `${head}${encodeValue(value!, line.raw)}${line.tail}` });
      continue;
    }
    out.push(line);
  }
  for (const [name, value] of Object.entries(changes)) {
    if (value === null || present.has(name)) continue;
    insertKey(out, name, value);
  }
  dropEmptySections(out, lines);
  return out.map((l) => l.text + l.cr).join('\n');
}

/** the new line goes after the last assignment of its section (a new section goes at the end of the file) */
function insertKey(lines: IniLine[], name: string, value: string): void {
  const [section, key] = splitIniKey(name);
  if (/[=[\]\r\n]/.test(key) || key.trim() !== key || key === '')
    throw ApplicationFailure.nonRetryable(`"${name}" cannot be an INI key`, ErrorType.InvalidInput);
  const cr = lines.some((l) => l.cr) ? '\r' : '';
  const line: IniLine = { text: `${key}=${encodeValue(value, undefined)}`, cr, name };
  let current = '';
  let headerAt = section === '' ? -1 : undefined;
  let lastInSection: number | undefined;
  lines.forEach((l, i) => {
    if (l.header !== undefined) {
      current = l.header;
      if (current === section) headerAt = i;
    } else if (l.name !== undefined && current === section) lastInSection = i;
  });
  if (lastInSection !== undefined || headerAt !== undefined) {
    lines.splice((lastInSection ?? headerAt!) + 1, 0, line);
    return;
  }
  // a section the file does not have yet: at the end, before the final line break when there is one
  const header: IniLine = { text: `[${section}]`, cr, header: section };
  const last = lines.length - 1;
  if (last >= 0 && lines[last]!.text === '' && !lines[last]!.cr) lines.splice(last, 0, header, line);
  else lines.push(header, line);
}

/**
 * A section this edit emptied completely (its header directly followed by another header or the end) is
 * dropped, so that adding a key in a new section and removing it again gives back the same bytes.
 */
function dropEmptySections(out: IniLine[], before: IniLine[]): void {
  const hadEmpty = new Set(
    before.filter((l, i) => l.header !== undefined && isEmptyAt(before, i)).map((l) => l.header),
  );
  for (let i = out.length - 1; i >= 0; i--) {
    const l = out[i]!;
    if (l.header !== undefined && !hadEmpty.has(l.header) && isEmptyAt(out, i)) out.splice(i, 1);
  }
}

function isEmptyAt(lines: IniLine[], i: number): boolean {
  const next = lines[i + 1];
  return next === undefined || next.header !== undefined || (next.text === '' && i + 2 === lines.length);
}

export class IniConfigStore implements ConfigStore {
  constructor(private readonly path: string) {}

  describe(): string {
    return `ini ${this.path}`;
  }

  async read(keys: string[]): Promise<ConfigValues> {
    const values = readIni(await readFile(this.path, 'utf8'));
    return Object.fromEntries(keys.map((k) => [k, values.get(k) ?? null]));
  }

  async write(values: ConfigValues): Promise<{ changed: boolean }> {
    const before = await readFile(this.path, 'utf8');
    const current = readIni(before);
    const needed = Object.entries(values).filter(([k, v]) => (current.get(k) ?? null) !== v);
    if (needed.length === 0) return { changed: false };
    const after = editIni(before, Object.fromEntries(needed));
    const check = readIni(after);
    const wrong = needed.filter(([k, v]) => (check.get(k) ?? null) !== v);
    if (wrong.length)
      throw new Error(`${this.describe()}: the edit would not read back: ${wrong.map(([k]) => k).join(', ')}`);
    // the service's file: it keeps its mode and owner
    await writeFileAtomically(this.path, after, { mode: 'keep' });
    return { changed: true };
  }

  snapshot(): Promise<Buffer> {
    return readSnapshotFile(this.path);
  }

  restoreSnapshot(content: Buffer): Promise<{ changed: boolean }> {
    return restoreFileSnapshot(this.path, content);
  }
}
