import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildEvidence, type EvidenceDocument } from '../../src/activities/evidence/document.js';
import type { HistoryJson } from '../../src/activities/evidence/history.js';
import type { EvidenceInput } from '../../src/shared/types.js';

const DIR = join(import.meta.dirname, '..', 'histories');

/**
 * The evidence a recorded run (test/histories/<name>.json, saved by the runbooks' own tests) wrote: its last
 * writeEvidence activity's input, built into the document the worker wrote (unsigned). Real runs, no server.
 */
export function recordedEvidence(name: string): EvidenceDocument {
  const history = JSON.parse(readFileSync(join(DIR, `${name}.json`), 'utf8')) as {
    events?: Array<Record<string, any>>;
  };
  const write = (history.events ?? [])
    .map((e) => e.activityTaskScheduledEventAttributes)
    .filter((a) => a?.activityType?.name === 'writeEvidence')
    .at(-1);
  if (!write) throw new Error(`${name} wrote no evidence`);
  const input = JSON.parse(Buffer.from(write.input.payloads[0].data, 'base64').toString('utf8')) as EvidenceInput;
  return buildEvidence(input);
}

export const recordedHistory = (name: string): HistoryJson =>
  JSON.parse(readFileSync(join(DIR, `${name}.json`), 'utf8')) as HistoryJson;

/** Every recorded run that wrote evidence (child workflows and the lock workflow write none). */
export function recordedRunsWithEvidence(): string[] {
  return readdirSync(DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .filter((name) => readFileSync(join(DIR, `${name}.json`), 'utf8').includes('"writeEvidence"'));
}
