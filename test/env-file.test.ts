import {
  chmodSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { editEnvFile, EnvFileFlagStore, parseEnvFile } from '../src/activities/adapters/env-file.js';
import { writeFileAtomically } from '../src/activities/files.js';
import type { FlagValues } from '../src/activities/adapters/types.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempFile(content: string, name = 'app.env'): string {
  const dir = mkdtempSync(join(tmpdir(), 'runbook-env-file-'));
  dirs.push(dir);
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

const asObject = (text: string) => Object.fromEntries(parseEnvFile(text));

describe('parseEnvFile', () => {
  it('skips comments and blank lines and keeps plain values', () => {
    const text = ['# header comment', '', 'A=1', '   # indented comment', '#B=commented-out', 'C=three', ''].join('\n');
    expect(asObject(text)).toEqual({ A: '1', C: 'three' });
  });

  it('returns keys in file order', () => {
    expect([...parseEnvFile('Z=1\nA=2\nM=3\n').keys()]).toEqual(['Z', 'A', 'M']);
  });

  it('accepts the export prefix and spaces around "="', () => {
    expect(asObject('export A=1\n  export   B = two\nexportC=3\nexport=4\n')).toEqual({
      A: '1',
      B: 'two',
      exportC: '3',
      export: '4',
    });
  });

  it('unquotes double- and single-quoted values', () => {
    const text =
      'A="hello world"\nB=\'single # not a comment\'\nC="with \\"escaped\\" quotes, \\\\ and \\$HOME"\nD=\'no $escapes\\n\'\n';
    expect(asObject(text)).toEqual({
      A: 'hello world',
      B: 'single # not a comment',
      C: 'with "escaped" quotes, \\ and $HOME',
      D: 'no $escapes\\n',
    });
  });

  it('strips inline comments only when preceded by whitespace', () => {
    const text =
      'A=on # turned on by ops\nB=a#b\nC="x y" # quoted then comment\nD= # only a comment\nE=\nF=trailing   \n';
    expect(asObject(text)).toEqual({ A: 'on', B: 'a#b', C: 'x y', D: '', E: '', F: 'trailing' });
  });

  it('keeps an unterminated quote as part of an unquoted value', () => {
    expect(asObject('A="open\n')).toEqual({ A: '"open' });
  });

  it('tolerates CRLF line endings', () => {
    expect(asObject('# c\r\nA=1\r\nB="two"\r\nC=3 # c\r\nD=\r\n')).toEqual({ A: '1', B: 'two', C: '3', D: '' });
  });

  it('lets the last assignment of a key assigned twice win', () => {
    expect(parseEnvFile('A=first\nB=x\nA=second\n').get('A')).toBe('second');
  });

  it('ignores lines that are not assignments', () => {
    expect(asObject('just words\n1BAD=x\nA-B=y\nGOOD=z\n')).toEqual({ GOOD: 'z' });
  });
});

describe('editEnvFile', () => {
  const file = [
    '# Feature flags for web',
    '',
    'export DUAL_WRITE="true"   # set by deploy 42',
    "STRICT='false'",
    'LEGACY=off',
    '  # trailing section',
    'OTHER=untouched',
    '',
  ].join('\n');

  it('changes only the edited assignments, keeping comments, order, quoting and spacing', () => {
    const out = editEnvFile(file, { DUAL_WRITE: 'false', STRICT: 'true', LEGACY: 'on' });
    expect(out).toBe(
      [
        '# Feature flags for web',
        '',
        'export DUAL_WRITE="false"   # set by deploy 42',
        "STRICT='true'",
        'LEGACY=on',
        '  # trailing section',
        'OTHER=untouched',
        '',
      ].join('\n'),
    );
  });

  it('returns the text unchanged when there are no changes', () => {
    expect(editEnvFile(file, {})).toBe(file);
  });

  it('quotes and escapes a new value that needs it on an unquoted line', () => {
    const out = editEnvFile('A=1\n', { A: 'say "hi" to $USER # now' });
    expect(out).toBe('A="say \\"hi\\" to \\$USER # now"\n');
    expect(parseEnvFile(out).get('A')).toBe('say "hi" to $USER # now');
  });

  it('switches a single-quoted line to double quotes for a value containing a single quote', () => {
    const out = editEnvFile("A='x'\n", { A: "it's" });
    expect(out).toBe('A="it\'s"\n');
    expect(parseEnvFile(out).get('A')).toBe("it's");
  });

  it('writes an empty value on a line with an inline comment so that it reads back empty', () => {
    const out = editEnvFile('A=on # note\n', { A: '' });
    expect(out).toBe('A= # note\n');
    expect(parseEnvFile(out).get('A')).toBe('');
    expect(editEnvFile(out, { A: 'on' })).toBe('A=on # note\n');
  });

  it('refuses values with line breaks instead of corrupting the file', () => {
    expect(() => editEnvFile('A=1\n', { A: 'x\nB=injected' })).toThrow(/line breaks/);
    expect(() => editEnvFile('A=1\n', { NEW: 'x\r' })).toThrow(/line breaks/);
  });

  it('appends a missing key before the final newline', () => {
    expect(editEnvFile('A=1\nB=2\n', { C: 'three', D: 'x y' })).toBe('A=1\nB=2\nC=three\nD="x y"\n');
  });

  it('appends a missing key to a file without a final newline without adding one', () => {
    expect(editEnvFile('A=1\nB=2', { C: '3' })).toBe('A=1\nB=2\nC=3');
  });

  it('appends to an empty file', () => {
    expect(editEnvFile('', { A: '1' })).toBe('A=1\n');
  });

  it('appends with CRLF when the file uses CRLF', () => {
    expect(editEnvFile('A=1\r\n', { B: '2' })).toBe('A=1\r\nB=2\r\n');
  });

  it('keeps CRLF on edited lines, including empty values', () => {
    expect(editEnvFile('A=1\r\nB=\r\nC="x" # c\r\n', { A: '2', B: 'set', C: 'y' })).toBe(
      'A=2\r\nB=set\r\nC="y" # c\r\n',
    );
  });

  it('removes a key given null, every copy of it, and ignores null for a missing key', () => {
    expect(editEnvFile('# c\nA=1\nB=2\nA=3\n', { A: null, MISSING: null })).toBe('# c\nB=2\n');
  });

  it('edits every copy of a key assigned twice', () => {
    const out = editEnvFile('A=first # one\nB=x\nA="second"\n', { A: 'new' });
    expect(out).toBe('A=new # one\nB=x\nA="new"\n');
    expect(parseEnvFile(out).get('A')).toBe('new');
  });

  it('does not append a key that is already present', () => {
    expect(editEnvFile('export A=1\n', { A: '2' })).toBe('export A=2\n');
  });
});

describe('editEnvFile round trip: new values, then the previous values, give back the same bytes', () => {
  const shapes: Array<{ name: string; text: string }> = [
    { name: 'plain, trailing newline', text: 'A=true\nB=false\n' },
    { name: 'no trailing newline', text: 'A=true\nB=false' },
    { name: 'empty file', text: '' },
    {
      name: 'comments, blanks, export, quotes and inline comments',
      text: '# flags\n\nexport A="true"  # quoted\nB=\'false\'\n\n  # keep me\nC=1 # note\nOTHER=x\n',
    },
    { name: 'CRLF', text: '# flags\r\nA=true\r\nB="false" # c\r\nC=1\r\n' },
    { name: 'CRLF, no trailing newline', text: 'A=true\r\nC=1' },
    { name: 'key assigned twice', text: 'A=true\nB=false\nA=true\n' },
    { name: 'empty values and comment-only value', text: 'A=\nB= # unset\nC=  \n' },
    { name: 'odd spacing', text: '   A = true   \n\tB\t=\tfalse\t# tab\n' },
  ];
  const keys = ['A', 'B', 'C', 'D', 'E'];

  for (const { name, text } of shapes) {
    it(name, () => {
      const before = parseEnvFile(text);
      const previous: FlagValues = Object.fromEntries(keys.map((k) => [k, before.get(k) ?? null]));
      // flip every key that is set, add every key that is missing (a rollback sets flags, the undo restores them)
      const next: FlagValues = Object.fromEntries(keys.map((k) => [k, previous[k] === 'true' ? 'false' : 'true']));
      const changed = editEnvFile(text, next);
      expect(changed).not.toBe(text);
      expect(Object.fromEntries(keys.map((k) => [k, parseEnvFile(changed).get(k) ?? null]))).toEqual(next);
      expect(editEnvFile(changed, previous)).toBe(text);
    });
  }

  it('also with values that need quoting on lines that were already quoted', () => {
    const text = 'A="x"\nB="plain"\n';
    const changed = editEnvFile(text, { A: 'a "quoted" $value', B: 'with space' });
    expect(changed).toBe('A="a \\"quoted\\" \\$value"\nB="with space"\n');
    expect(editEnvFile(changed, { A: 'x', B: 'plain' })).toBe(text);
  });
});

describe('EnvFileFlagStore', () => {
  it('describes itself by path', () => {
    expect(new EnvFileFlagStore('/etc/app.env').describe()).toBe('env-file /etc/app.env');
  });

  it('reads the named flags, null for a missing key', async () => {
    const store = new EnvFileFlagStore(tempFile('A=1\nexport B="two words"\n'));
    expect(await store.read(['A', 'B', 'MISSING'])).toEqual({ A: '1', B: 'two words', MISSING: null });
  });

  it('is a no-op when the values already match: changed false, same inode and mtime', async () => {
    const path = tempFile('A=1\nB=2\n');
    const past = new Date('2020-01-01T00:00:00Z');
    utimesSync(path, past, past);
    const before = statSync(path);
    const result = await new EnvFileFlagStore(path).write({ A: '1', B: '2', MISSING: null });
    expect(result).toEqual({ changed: false });
    const after = statSync(path);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(readFileSync(path, 'utf8')).toBe('A=1\nB=2\n');
  });

  it('writes only what differs, atomically replacing the file, and restores it byte for byte', async () => {
    const original = '# flags\nexport A="true" # c\nB=false\n';
    const path = tempFile(original);
    const store = new EnvFileFlagStore(path);
    const inode = statSync(path).ino;
    expect(await store.write({ A: 'false', B: 'false', C: 'on' })).toEqual({ changed: true });
    expect(readFileSync(path, 'utf8')).toBe('# flags\nexport A="false" # c\nB=false\nC=on\n');
    expect(statSync(path).ino).not.toBe(inode);
    expect(await store.read(['A', 'B', 'C'])).toEqual({ A: 'false', B: 'false', C: 'on' });
    expect(await store.write({ A: 'true', C: null })).toEqual({ changed: true });
    expect(readFileSync(path, 'utf8')).toBe(original);
  });

  it('preserves the file mode across writes, whatever the umask', async () => {
    for (const mode of [0o600, 0o640, 0o664, 0o666]) {
      const path = tempFile('A=1\n');
      chmodSync(path, mode);
      await new EnvFileFlagStore(path).write({ A: '2' });
      expect(statSync(path).mode & 0o7777).toBe(mode);
    }
  });

  it('leaves no temporary files behind', async () => {
    const path = tempFile('A=1\n', 'flags.env');
    await new EnvFileFlagStore(path).write({ A: '2' });
    expect(readdirSync(join(path, '..'))).toEqual(['flags.env']);
  });
});

describe('writeFileAtomically (src/activities/files.ts)', () => {
  it("keeps an existing file's mode with mode: keep (a service's flag file stays 0664)", async () => {
    const path = tempFile('old\n');
    chmodSync(path, 0o664);
    await writeFileAtomically(path, 'new\n', { mode: 'keep' });
    expect(readFileSync(path, 'utf8')).toBe('new\n');
    expect(statSync(path).mode & 0o777).toBe(0o664);
  });

  it('writes private files by default: 0600 in a new 0700 directory', async () => {
    const path = join(tempFile(''), '..', 'private', 'deeper', 'a.json');
    await writeFileAtomically(path, '{}\n');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(path, '..')).mode & 0o777).toBe(0o700);
    expect(statSync(join(path, '..', '..')).mode & 0o777).toBe(0o700);
  });

  it('replaces the content of an existing file exactly, leaving no temp file', async () => {
    const path = tempFile('old content that is longer\n', 'b.env');
    await writeFileAtomically(path, 'new\n', { mode: 'keep' });
    expect(readFileSync(path, 'utf8')).toBe('new\n');
    expect(readdirSync(join(path, '..'))).toEqual(['b.env']);
  });

  it('fails when the directory of a kept file does not exist', async () => {
    const path = join(tempFile(''), '..', 'missing-dir', 'a.env');
    await expect(writeFileAtomically(path, 'x', { mode: 'keep' })).rejects.toThrow(/ENOENT/);
  });
});
