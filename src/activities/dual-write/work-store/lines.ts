import { createHash } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';

/** bytes gathered before a chunk of JSON lines is handed to the writer */
const CHUNK_BYTES = 256 * 1024;

/** What an encoder saw once its chunks are consumed: the lines, the bytes and their sha256. */
export interface Encoded {
  lines: number;
  bytes: number;
  sha256(): string;
}

/**
 * The rows as JSON lines, gathered into chunks of about CHUNK_BYTES, hashed and counted on the way: the writer
 * streams them and learns the file's digest without reading it back.
 */
export function encodeLines(rows: AsyncIterable<unknown> | Iterable<unknown>): {
  chunks: AsyncGenerator<Buffer>;
  done: Encoded;
} {
  const hash = createHash('sha256');
  let digest: string | undefined;
  const done: Encoded = {
    lines: 0,
    bytes: 0,
    sha256: () => (digest ??= hash.digest('hex')),
  };
  const chunks = (async function* () {
    let parts: string[] = [];
    let size = 0;
    const flush = () => {
      const chunk = Buffer.from(parts.join(''));
      parts = [];
      size = 0;
      hash.update(chunk);
      done.bytes += chunk.length;
      return chunk;
    };
    for await (const row of rows) {
      const line = `${JSON.stringify(row)}\n`;
      parts.push(line);
      size += line.length;
      done.lines++;
      if (size >= CHUNK_BYTES) yield flush();
    }
    if (size > 0) yield flush();
  })();
  return { chunks, done };
}

/** The JSON lines of a byte stream, parsed one at a time (a line may span chunks, a character too). */
export async function* decodeLines<T>(chunks: AsyncIterable<Buffer | string>): AsyncGenerator<T> {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  for await (const chunk of chunks) {
    const text = rest + (typeof chunk === 'string' ? chunk : decoder.write(chunk));
    const lines = text.split('\n');
    rest = lines.pop()!;
    for (const line of lines) if (line) yield JSON.parse(line) as T;
  }
  rest += decoder.end();
  if (rest) yield JSON.parse(rest) as T;
}

/** The rows of `lines` in pages of `size`, each with the number of rows before it. */
export async function* pagesOf<T>(lines: AsyncIterable<T>, size: number, first = 0): AsyncGenerator<[number, T[]]> {
  let page: T[] = [];
  let at = 0;
  let start = first;
  for await (const row of lines) {
    if (at++ < first) continue;
    page.push(row);
    if (page.length >= size) {
      yield [start, page];
      start += page.length;
      page = [];
    }
  }
  if (page.length) yield [start, page];
}
