import { StringDecoder } from 'node:string_decoder';

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
