/**
 * Seeds a demo SQLite database of about N MB (all milestones unless --milestones says otherwise):
 *   tsx src/demo/sqlite-app/seed-cli.ts --db .data/sqlite-demo/abathur.db --mb 1024 [--milestones memory,vector] [--force]
 */
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { seedSqliteDatabase } from './seed.js';
import type { OptionalMilestone } from './schema.js';

const { values } = parseArgs({
  options: {
    db: { type: 'string' },
    mb: { type: 'string', default: '20' },
    milestones: { type: 'string', default: 'memory,vector' },
    force: { type: 'boolean', default: false },
  },
});
const mb = Number(values.mb);
const milestones = values.milestones.split(',').filter(Boolean);
if (!values.db || !(mb > 0) || milestones.some((m) => m !== 'memory' && m !== 'vector')) {
  console.error('usage: seed-cli.ts --db <path> --mb <size> [--milestones memory,vector] [--force]');
  process.exit(2);
}
if (values.force) for (const suffix of ['', '-wal', '-shm']) rmSync(values.db + suffix, { force: true });

const started = performance.now();
let lastReport = 0;
const result = await seedSqliteDatabase(values.db, {
  targetBytes: Math.round(mb * 1024 * 1024),
  milestones: milestones as OptionalMilestone[],
  onProgress: (bytes) => {
    if (performance.now() - lastReport < 2000) return;
    lastReport = performance.now();
    process.stderr.write(`${(bytes / 1048576).toFixed(0)} MB after ${((lastReport - started) / 1000).toFixed(1)} s\n`);
  },
});
const seconds = (performance.now() - started) / 1000;
console.log(
  JSON.stringify({
    db: values.db,
    bytes: result.bytes,
    mb: Math.round((result.bytes / 1048576) * 10) / 10,
    seconds: Math.round(seconds * 100) / 100,
    mbPerSecond: Math.round((result.bytes / 1048576 / seconds) * 10) / 10,
    rows: result.rows,
  }),
);
