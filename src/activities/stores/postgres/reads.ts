import type pg from 'pg';
import { BlobDir } from '../blob-dir.js';
import { keyCondition, keysetPages } from '../sql.js';
import type {
  FingerprintList,
  FingerprintProbe,
  KeyRange,
  ObjectKey,
  ObjectMeta,
  SegmentSummary,
  StoredObject,
} from '../types.js';
import { keyArrays, param, toMeta, type MetaRow, type PostgresTable } from './table.js';

type ContentRow = MetaRow & { content: Buffer };
type ReferenceRow = MetaRow & { content: string };

/**
 * The table's reads: keyset scans, segment checksums and fingerprint lists computed by Postgres (one statement
 * for many ranges), rows by fingerprint, the keys that cut a range into segments, and rows by key (content from
 * the blob root under the shared blob lock when the table holds references). Each waits for the store's schema
 * first (ready).
 */
export class PostgresReads {
  constructor(
    private readonly table: PostgresTable,
    /** resolves once the store's schema is prepared (init()) */
    private readonly ready: () => Promise<void>,
  ) {}

  async *scan(range: KeyRange, pageSize: number): AsyncGenerator<ObjectMeta[]> {
    await this.ready();
    yield* keysetPages(range, pageSize, async (r, after) => {
      const params: unknown[] = [];
      const where = this.table.where(r, params, after);
      params.push(pageSize);
      const { rows } = await this.table.query<MetaRow>(
        `SELECT ${this.table.metaColumns()} FROM ${this.table.t} WHERE ${where} ${this.table.orderBy()} LIMIT ${param(params.length)}`,
        params,
      );
      return rows.map(toMeta);
    });
  }

  /** count, Σ high and Σ low signed 32-bit halves of the fingerprints (sum(int) is bigint: exact) */
  private static readonly SUMS = (fp: string) =>
    `count(*)::bigint::text AS count, coalesce(sum((${fp} >> 32)::int), 0)::text AS h1, coalesce(sum(((${fp} << 32) >> 32)::int), 0)::text AS h2`;

  async summarize(range: KeyRange): Promise<SegmentSummary> {
    await this.ready();
    const params: unknown[] = [];
    const { rows } = await this.table.query<{ count: string; h1: string; h2: string }>(
      `SELECT ${PostgresReads.SUMS(this.table.fpSql)} FROM ${this.table.t} WHERE ${this.table.where(range, params)}`,
      params,
    );
    const row = rows[0]!;
    return { count: Number(row.count), h1: row.h1, h2: row.h2 };
  }

  /**
   * Runs `inner` (a subquery over the table with `where` for the range condition) once per range, in one
   * statement: ranges bounded on both sides go through unnest() + LATERAL (one index range scan each), open-ended
   * ones as their own statements. With `values` (one text per range), `inner`'s second argument is the SQL for
   * the range's value. Rows come back tagged with the range's index.
   */
  private async perRange<R extends pg.QueryResultRow>(
    ranges: KeyRange[],
    inner: (where: string, value: string) => string,
    values?: string[],
  ): Promise<Array<{ i: number; rows: R[] }>> {
    await this.ready();
    const bounded: number[] = [];
    const open: number[] = [];
    ranges.forEach((r, i) => (r.from && r.to ? bounded : open).push(i));
    const out: Array<{ i: number; rows: R[] }> = [];
    const work: Array<Promise<void>> = [];
    if (bounded.length) {
      const bounds = { from: { id: 's.lo_id', version: 's.lo_v' }, to: { id: 's.hi_id', version: 's.hi_v' } };
      const where = keyCondition(this.table.c.objectId, this.table.c.version, bounds, {
        collate: this.table.collate,
        idBounds: true,
      });
      const rs = bounded.map((i) => ranges[i]!);
      const params: unknown[] = [
        rs.map((r) => r.from!.objectId),
        rs.map((r) => r.from!.version),
        rs.map((r) => r.to!.objectId),
        rs.map((r) => r.to!.version),
      ];
      if (values) params.push(bounded.map((i) => values[i]!));
      const columns = values
        ? '$1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[]) WITH ORDINALITY AS s(lo_id, lo_v, hi_id, hi_v, x, i)'
        : '$1::text[], $2::bigint[], $3::text[], $4::bigint[]) WITH ORDINALITY AS s(lo_id, lo_v, hi_id, hi_v, i)';
      work.push(
        this.table
          .query<R & { i: string }>(
            `SELECT s.i::int AS i, o.* FROM unnest(${columns} CROSS JOIN LATERAL (${inner(where, 's.x')}) AS o`,
            params,
          )
          .then(({ rows }) => {
            const groups = new Map<number, R[]>();
            for (const row of rows) {
              const i = bounded[Number(row.i) - 1]!;
              let g = groups.get(i);
              if (!g) groups.set(i, (g = []));
              g.push(row);
            }
            for (const [i, g] of groups) out.push({ i, rows: g });
          }),
      );
    }
    for (const i of open) {
      const params: unknown[] = [];
      const where = this.table.where(ranges[i]!, params);
      if (values) params.push(values[i]);
      work.push(
        this.table
          .query<R>(inner(where, `${param(params.length)}::text`), params)
          .then(({ rows }) => void out.push({ i, rows })),
      );
    }
    await Promise.all(work);
    return out.sort((x, y) => x.i - y.i);
  }

  async summarizeRanges(ranges: KeyRange[]): Promise<SegmentSummary[]> {
    const groups = await this.perRange<{ count: string; h1: string; h2: string }>(
      ranges,
      (where) => `SELECT ${PostgresReads.SUMS(this.table.fpSql)} FROM ${this.table.t} WHERE ${where}`,
    );
    const out: SegmentSummary[] = ranges.map(() => ({ count: 0, h1: '0', h2: '0' }));
    for (const { i, rows } of groups) out[i] = { count: Number(rows[0]!.count), h1: rows[0]!.h1, h2: rows[0]!.h2 };
    return out;
  }

  /** one string_agg per range: a segment's fingerprints cross the wire and the driver as one text value */
  async fingerprintLists(ranges: KeyRange[]): Promise<FingerprintList[]> {
    const groups = await this.perRange<{ list: string | null }>(
      ranges,
      // the subquery's order (the index's) is the aggregate's: no sort per range
      (where) =>
        `SELECT string_agg(fp::text, ',') AS list FROM (SELECT ${this.table.fpSql} AS fp FROM ${this.table.t} WHERE ${where} ${this.table.orderBy()}) AS ordered`,
    );
    const out: FingerprintList[] = ranges.map(() => '');
    for (const { i, rows } of groups) out[i] = rows[0]?.list ?? '';
    return out;
  }

  /** one statement: one range scan per probe, on the covering index when the column is stored */
  async metaByFingerprint(probes: FingerprintProbe[]): Promise<ObjectMeta[]> {
    const c = this.table.c;
    const asked = probes.filter((p) => p.fingerprints.length);
    if (!asked.length) return [];
    const groups = await this.perRange<MetaRow>(
      asked.map((p) => p.range),
      // the keys from the covering index (an index-only scan of the range), then the rows by key; OFFSET 0 keeps
      // the planner from flattening the probes into one hash join over the whole table
      (where, fps) =>
        `SELECT ${this.table.metaColumns()} FROM ${this.table.t} WHERE (${c.objectId}, ${c.version}) IN (SELECT ${c.objectId}, ${c.version} FROM ${this.table.t} WHERE ${where} AND ${this.table.fpSql} = ANY(string_to_array(${fps}, ',')::bigint[]) OFFSET 0)`,
      asked.map((p) => p.fingerprints.join(',')),
    );
    return groups.flatMap(({ rows }) => rows.map(toMeta));
  }

  /** Keys at positions step, 2·step, … (0-based) from the start of the range, numbered in one ordered index scan. */
  async stepKeys(range: KeyRange, step: number, max: number): Promise<ObjectKey[]> {
    if (!(step >= 1)) throw new Error(`segment step must be at least 1, got ${step}`);
    if (max < 1) return [];
    await this.ready();
    const c = this.table.c;
    const params: unknown[] = [];
    const where = this.table.where(range, params);
    params.push(step * max + 1, step);
    const { rows } = await this.table.query<{ objectId: string; version: number | string }>(
      `SELECT "objectId", "version" FROM (
         SELECT ${c.objectId} AS "objectId", ${c.version} AS "version", row_number() OVER (${this.table.orderBy()}) AS rn
         FROM ${this.table.t} WHERE ${where} ${this.table.orderBy()} LIMIT ${param(params.length - 1)}
       ) AS numbered
       WHERE rn > 1 AND (rn - 1) % ${param(params.length)} = 0 ORDER BY rn`,
      params,
    );
    return rows.map((r) => ({ objectId: r.objectId, version: Number(r.version) }));
  }

  async getMeta(keys: ObjectKey[]): Promise<ObjectMeta[]> {
    if (keys.length === 0) return [];
    await this.ready();
    const { rows } = await this.table.query<MetaRow>(this.byKeys(this.table.metaColumns()), keyArrays(keys));
    return rows.map(toMeta);
  }

  /** `select` of the rows of the keys given as $1 (ids) and $2 (versions), in the order given */
  private byKeys(select: string): string {
    const c = this.table.c;
    // the lateral subquery resolves the table's columns first, whatever they are called
    return `SELECT o.* FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS k(id, v, ord)
       CROSS JOIN LATERAL (SELECT ${select} FROM ${this.table.t} WHERE ${c.objectId} = k.id AND ${c.version} = k.v) AS o
       ORDER BY k.ord`;
  }

  async get(keys: ObjectKey[]): Promise<StoredObject[]> {
    if (keys.length === 0) return [];
    await this.ready();
    const sql = this.byKeys(`${this.table.metaColumns()}, ${this.table.c.content} AS "content"`);
    const params = keyArrays(keys);
    if (!this.table.blobs) {
      const { rows } = await this.table.query<ContentRow>(sql, params);
      return rows.map((r) => ({ ...toMeta(r), content: r.content }));
    }
    // under the shared lock no blob these rows reference can be collected before it is read
    return this.table.transaction(async (client) => {
      await this.table.lockBlobs(client, 'shared');
      const { rows } = await client.query<ReferenceRow>(sql, params);
      const out: StoredObject[] = [];
      for (const r of rows) out.push(await this.readReferenced(r));
      return out;
    });
  }

  /** The blob a row references, checked against the row's size and sha256. */
  private async readReferenced(row: ReferenceRow): Promise<StoredObject> {
    const meta = toMeta(row);
    const what = `${meta.objectId}@${meta.version}`;
    const sha = BlobDir.digestOf(row.content);
    if (sha === undefined)
      throw new Error(`${what}: content reference ${JSON.stringify(row.content)} is not a blob path <sha[0:2]>/<sha>`);
    if (sha !== meta.sha256)
      throw new Error(`${what}: content reference ${row.content} is not the blob of its sha256 ${meta.sha256}`);
    return { ...meta, content: await this.table.blobs!.read(sha, meta.size, what) };
  }
}
