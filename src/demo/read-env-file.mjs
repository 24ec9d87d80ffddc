// KEY=VALUE lines of an env file as the demo services read their flags (comments, `export`, quotes handled).
import { readFileSync } from 'node:fs';

/** @param {string} path @returns {Record<string, string>} */
export function readEnvFile(path) {
  const values = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m || line.trim().startsWith('#')) continue;
    let value = m[2].replace(/\s+#.*$/, '').trim();
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1);
    values[m[1]] = value;
  }
  return values;
}
