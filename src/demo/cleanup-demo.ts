import pg from 'pg';
import { quoteIdentifier } from '../activities/stores/sql.js';

/**
 * The seed's team tables (feature-flag-dual-write-rollback.md, scenario 3) in one Postgres schema: vNext teams
 * and their memberships, legacy teams and theirs, and the migration map between them — with real rows, test rows
 * left over from staging validation, and one orphaned mapping that was there before (the orphan baseline).
 * `npm start` seeds schema `deltacrown` of DEMO_DATABASE_URL; the tests seed a schema of their own.
 */

const REAL_TEAMS: Array<[number, string, number]> = [
  [1, 'Crown Legends', 101],
  [2, 'Delta Esports', 102],
  [3, 'Night Owls', 103],
  [4, 'Testarossa Racing', 104], // a real team whose name contains "Test": not matched by the patterns
];
const TEST_TEAMS: Array<[number, string, number]> = [
  [11, 'Staging Test Alpha', 111],
  [12, 'Staging Test Beta', 112],
  [13, 'Dual Write Test Team', 113],
];

/** The cleanup section of an environment file for the demo tables in `schema`. */
export function cleanupSection(schema: string, options: { urlEnv?: string; workDir: string }): Record<string, unknown> {
  const t = (name: string) => `${schema}.${name}`;
  return {
    urlEnv: options.urlEnv ?? 'DEMO_DATABASE_URL',
    workDir: options.workDir,
    tables: {
      [t('organizations_team')]: {
        label: 'name',
        where: {
          any: [
            { column: 'name', like: '%Staging Test%' },
            { column: 'name', like: '%Test Team%' },
          ],
        },
      },
      [t('organizations_teammembership')]: {},
      [t('organizations_teammigrationmap')]: {},
      [t('teams_team')]: { label: 'name' },
      [t('teams_teammembership')]: {},
    },
    relations: [
      { table: t('organizations_teammembership'), column: 'team_id', references: t('organizations_team') },
      { table: t('organizations_teammigrationmap'), column: 'vnext_team_id', references: t('organizations_team') },
      {
        table: t('organizations_teammigrationmap'),
        column: 'legacy_team_id',
        references: t('teams_team'),
        selectReferenced: true,
      },
      { table: t('teams_teammembership'), column: 'team_id', references: t('teams_team') },
    ],
  };
}

/** Creates the tables in `schema` when missing and puts every seed row in place (rows already there stay). */
export async function seedCleanupDemo(db: Pick<pg.ClientBase, 'query'>, schema: string): Promise<void> {
  const s = quoteIdentifier(schema);
  await db.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
  await db.query(`
    CREATE TABLE IF NOT EXISTS ${s}.organizations_team (
      id bigint PRIMARY KEY, name text NOT NULL, slug text NOT NULL UNIQUE, rating numeric(8,3),
      settings jsonb NOT NULL DEFAULT '{}', logo bytea, created_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE IF NOT EXISTS ${s}.organizations_teammembership (
      id bigint PRIMARY KEY, team_id bigint NOT NULL REFERENCES ${s}.organizations_team (id),
      user_id integer NOT NULL, role text NOT NULL, joined_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE IF NOT EXISTS ${s}.teams_team (
      id integer PRIMARY KEY, name text NOT NULL, is_active boolean NOT NULL DEFAULT true,
      created_at timestamp NOT NULL DEFAULT now());
    CREATE TABLE IF NOT EXISTS ${s}.teams_teammembership (
      id integer PRIMARY KEY, team_id integer NOT NULL REFERENCES ${s}.teams_team (id),
      user_id integer NOT NULL, role text NOT NULL);
    -- no foreign keys here, as in the seed: mappings can be orphaned (its "orphaned mappings" check)
    CREATE TABLE IF NOT EXISTS ${s}.organizations_teammigrationmap (
      id integer PRIMARY KEY, vnext_team_id bigint, legacy_team_id integer,
      created_at timestamptz NOT NULL DEFAULT now());
  `);
  let membership = 1000;
  for (const [id, name, legacy] of [...REAL_TEAMS, ...TEST_TEAMS]) {
    const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '-');
    await db.query(
      `INSERT INTO ${s}.organizations_team (id, name, slug, rating, settings, logo, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
      [
        id,
        name,
        slug,
        (id * 1.125).toFixed(3),
        { region: id % 2 ? 'eu' : 'na', tags: [name] },
        Buffer.from([id, 0, 255]),
        new Date(Date.UTC(2026, 0, id, 12, 0, 0, 123)).toISOString(),
      ],
    );
    await db.query(`INSERT INTO ${s}.teams_team (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, [
      legacy,
      `${name} (legacy)`,
      `2025-12-${String(id).padStart(2, '0')} 08:30:00.5`,
    ]);
    await db.query(
      `INSERT INTO ${s}.organizations_teammigrationmap (id, vnext_team_id, legacy_team_id, created_at)
       VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
      [500 + id, id, legacy, new Date(Date.UTC(2026, 0, id, 12, 5)).toISOString()],
    );
    for (let m = 0; m < 2 + (id % 3); m++) {
      membership++;
      await db.query(
        `INSERT INTO ${s}.organizations_teammembership (id, team_id, user_id, role, joined_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
        [
          membership,
          id,
          7000 + membership,
          m === 0 ? 'owner' : 'member',
          new Date(Date.UTC(2026, 1, m + 1)).toISOString(),
        ],
      );
      await db.query(
        `INSERT INTO ${s}.teams_teammembership (id, team_id, user_id, role) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
        [membership, legacy, 7000 + membership, m === 0 ? 'captain' : 'player'],
      );
    }
  }
  // an orphaned mapping from before the test (its legacy team was deleted long ago): the baseline is 1, not 0
  await db.query(
    `INSERT INTO ${s}.organizations_teammigrationmap (id, vnext_team_id, legacy_team_id) VALUES (999, 3, 999) ON CONFLICT DO NOTHING`,
  );
}

/** `npm start`: the demo tables in schema `deltacrown` of the demo database, test rows back in place. */
export async function startCleanupDemo(databaseUrl: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  try {
    await seedCleanupDemo(pool, 'deltacrown');
  } finally {
    await pool.end();
  }
}
