// Where the demo job processor takes its jobs from: the seed's spool directories, or a Postgres table.
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { readFile, readdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const STATES = ['queue', 'processing', 'failed', 'completed'];

/** the replay key's tag, as in a spool file's name (the runbook's spool-names.ts): logs name replays alike */
const replayTag = (key) => createHash('sha256').update(key).digest('hex').slice(0, 16);

/** `<id>.json` → { id }; `<id>~<tag>.json` → { id, replay: tag } (the runbook's spool-names.ts) */
function jobOfName(name) {
  const m = /^(.+)~([0-9a-f]{16})\.json$/.exec(name);
  return m ? { id: m[1], replay: m[2] } : { id: name.slice(0, -'.json'.length) };
}

/**
 * `<root>/jobs/{queue,processing,failed,completed}/<name>`, where a name is `<id>.json`, or `<id>~<tag>.json` once a
 * replay requeued the job (the tag stands for the run's replay key). A job keeps its file's name in every state.
 * Claim: rename queue → processing, then mtime = now. Done: rename → completed. Failed: the job's JSON plus
 * lastError written to failed/, the claimed file removed; a file that is not JSON is moved to failed/ as it is.
 */
export class SpoolSource {
  constructor(root) {
    this.dirs = Object.fromEntries(STATES.map((s) => [s, join(root, 'jobs', s)]));
    for (const dir of Object.values(this.dirs)) mkdirSync(dir, { recursive: true });
  }

  describe() {
    return `spool ${this.dirs.queue}`;
  }

  async queued() {
    return (await readdir(this.dirs.queue)).filter((n) => n.endsWith('.json') && !n.startsWith('.')).sort();
  }

  async depth() {
    return (await this.queued()).length;
  }

  /** up to n jobs, in name order: { id, name, job?, raw, replay?, problem? } */
  async claim(n) {
    const claimed = [];
    for (const name of await this.queued()) {
      if (claimed.length >= n) break;
      const from = join(this.dirs.queue, name);
      const to = join(this.dirs.processing, name);
      try {
        await rename(from, to);
      } catch (err) {
        if (err.code === 'ENOENT') continue; // taken by another processor
        throw err;
      }
      const now = new Date();
      await utimes(to, now, now);
      const raw = await readFile(to, 'utf8');
      const { id, replay } = jobOfName(name);
      try {
        const job = JSON.parse(raw);
        if (typeof job !== 'object' || job === null || Array.isArray(job)) throw new Error('not a JSON object');
        const { lastError: _e, ...payload } = job;
        claimed.push({ id, name, job, payload, replay });
      } catch (err) {
        claimed.push({ id, name, raw, replay, problem: `not JSON: ${err.message}` });
      }
    }
    return claimed;
  }

  async complete(c) {
    await rename(join(this.dirs.processing, c.name), join(this.dirs.completed, c.name));
  }

  async fail(c, message) {
    const { name } = c;
    if (c.job === undefined) {
      await rename(join(this.dirs.processing, name), join(this.dirs.failed, name));
      return;
    }
    const tmp = join(this.dirs.failed, `.${name}.tmp-${process.pid}`);
    await writeFile(tmp, `${JSON.stringify({ ...c.job, lastError: message })}\n`);
    await rename(tmp, join(this.dirs.failed, name));
    await rm(join(this.dirs.processing, name), { force: true });
  }

  async close() {}
}

/**
 * A jobs table `(id, payload jsonb, status, attempts, started_at, updated_at, replay_key, error)`, created if
 * absent; claims with FOR UPDATE SKIP LOCKED, so several processors share it.
 */
export class PostgresSource {
  static async open(url, table) {
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({ connectionString: url, max: 4 });
    await pool.query(
      `CREATE TABLE IF NOT EXISTS ${table} (id text PRIMARY KEY, payload jsonb NOT NULL DEFAULT '{}', ` +
        `status text NOT NULL DEFAULT 'queue' CHECK (status IN ('queue','processing','failed','completed')), ` +
        `attempts integer NOT NULL DEFAULT 0, started_at timestamptz, updated_at timestamptz NOT NULL DEFAULT now(), ` +
        `replay_key text, error text)`,
    );
    return new PostgresSource(pool, table);
  }

  constructor(pool, table) {
    this.pool = pool;
    this.table = table;
  }

  describe() {
    return `postgres table ${this.table}`;
  }

  async depth() {
    const r = await this.pool.query(`SELECT count(*)::int AS n FROM ${this.table} WHERE status = 'queue'`);
    return r.rows[0].n;
  }

  async claim(n) {
    const r = await this.pool.query(
      `UPDATE ${this.table} SET status = 'processing', attempts = attempts + 1, started_at = now(), updated_at = now() ` +
        `WHERE id IN (SELECT id FROM ${this.table} WHERE status = 'queue' ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) ` +
        `RETURNING id, payload, replay_key`,
      [n],
    );
    return r.rows
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((row) => ({
        id: row.id,
        payload: { id: row.id, ...row.payload },
        replay: row.replay_key ? replayTag(row.replay_key) : undefined,
      }));
  }

  async complete(c) {
    await this.pool.query(
      `UPDATE ${this.table} SET status = 'completed', error = NULL, updated_at = now() WHERE id = $1 AND status = 'processing'`,
      [c.id],
    );
  }

  async fail(c, message) {
    await this.pool.query(
      `UPDATE ${this.table} SET status = 'failed', error = $2, updated_at = now() WHERE id = $1 AND status = 'processing'`,
      [c.id, message],
    );
  }

  async close() {
    await this.pool.end();
  }
}
