import { existsSync, readFileSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface FakeResponse {
  argv: string[];
  stdout?: string;
  stderr?: string;
  exitCode?: number;
}

/** exit code of a fake called with an argv it has no response for */
export const UNEXPECTED_ARGV_EXIT = 97;

/**
 * Writes an executable `<dir>/<name>` that records each call's argv (one JSON array per line in
 * `<dir>/<name>.calls.jsonl`) and answers with the first response whose argv equals its own exactly.
 * The script loads `node:fs` through a dynamic import, so it runs as CommonJS or as an ES module alike.
 */
export async function makeRecordingFake(dir: string, name: string, responses: FakeResponse[]): Promise<string> {
  const path = join(dir, name);
  const callsFile = join(dir, `${name}.calls.jsonl`);
  const script = `#!/usr/bin/env node
const responses = ${JSON.stringify(responses)};
const callsFile = ${JSON.stringify(callsFile)};
const argv = process.argv.slice(2);
import('node:fs').then((fs) => {
  fs.appendFileSync(callsFile, JSON.stringify(argv) + '\\n');
  const response = responses.find(
    (r) => r.argv.length === argv.length && r.argv.every((arg, i) => arg === argv[i]),
  );
  if (!response) {
    process.stderr.write('unexpected argv: ' + JSON.stringify(argv) + '\\n');
    process.exitCode = ${UNEXPECTED_ARGV_EXIT};
    return;
  }
  if (response.stdout) process.stdout.write(response.stdout);
  if (response.stderr) process.stderr.write(response.stderr);
  process.exitCode = response.exitCode ?? 0;
});
`;
  await writeFile(path, script);
  await chmod(path, 0o755);
  return path;
}

/** The argv of every call of fake `name` in `dir`, oldest first; empty when it was never called. */
export function readCalls(dir: string, name: string): string[][] {
  const callsFile = join(dir, `${name}.calls.jsonl`);
  if (!existsSync(callsFile)) return [];
  return readFileSync(callsFile, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as string[]);
}
