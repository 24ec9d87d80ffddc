// Where the demo job processor takes its jobs from: the seed's spool directories, or a Postgres table.
import { mkdirSync } from 'node:fs';
import { readFile, readdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const STATES = ['queue', 'processing', 'failed', 'completed'];

/**
 * `<root>/jobs/{queue,processing,failed,completed}/<id>.json`. Claim: rename queue → processing, then mtime = now.
 * Done: rename → completed. Failed: the job's JSON plus lastError written to failed/, the claimed file removed; a
 * file that is not JSON is moved to failed/ as it is.
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

  /** up to n jobs, in id order: { id, job?, raw, replayKey?, problem? } */
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
      const id = name.slice(0, -'.json'.length);
      try {
        const job = JSON.parse(raw);
        if (typeof job !== 'object' || job === null || Array.isArray(job)) throw new Error('not a JSON object');
        const { replay: _r, lastError: _e, ...payload } = job;
        claimed.push({ id, job, payload, replayKey: job.replay?.key });
      } catch (err) {
        claimed.push({ id, raw, problem: `not JSON: ${err.message}` });
      }
    }
    return claimed;
  }

  async complete(c) {
    await rename(join(this.dirs.processing, `${c.id}.json`), join(this.dirs.completed, `${c.id}.json`));
  }

  async fail(c, message) {
    const name = `${c.id}.json`;
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
      .map((row) => ({ id: row.id, payload: { id: row.id, ...row.payload }, replayKey: row.replay_key ?? undefined }));
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
