import pg from 'pg';

// The demo Postgres database of environments/demo.yaml's `teams` target: the seed's tables (vNext teams, legacy
// teams, the migration map), for postgres-backup and postgres-restore.

export const DEMO_TEAMS_DATABASE = 'demo_teams';

async function run(url: string, sql: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}

const withDatabase = (url: string, database: string) => {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.href;
};

/** The seed's tables with `rows` teams in each (legacy: every tenth inactive), in the database `url` names. */
export async function seedTeams(url: string, rows: number): Promise<void> {
  await run(
    url,
    `CREATE TABLE organizations_team (id bigint PRIMARY KEY, name text NOT NULL, slug text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
     CREATE TABLE teams_team (id bigint PRIMARY KEY, name text NOT NULL, is_active boolean NOT NULL DEFAULT true);
     CREATE TABLE organizations_teammigrationmap (vnext_team_id bigint PRIMARY KEY REFERENCES organizations_team(id), legacy_team_id bigint NOT NULL REFERENCES teams_team(id));
     INSERT INTO organizations_team SELECT i, 'Team ' || i, 'team-' || i FROM generate_series(1, ${rows}) i;
     INSERT INTO teams_team SELECT i, 'Legacy ' || i, i % 10 <> 0 FROM generate_series(1, ${rows}) i;
     INSERT INTO organizations_teammigrationmap SELECT i, i FROM generate_series(1, ${rows}) i;`,
  );
}

/** Creates and seeds `demo_teams` on the server `url` points at, unless it exists. */
export async function ensureDemoTeams(url: string): Promise<{ seeded: boolean }> {
  const exists = await run(url, `SELECT 1 FROM pg_database WHERE datname = '${DEMO_TEAMS_DATABASE}'`);
  if (exists.rowCount) return { seeded: false };
  await run(url, `CREATE DATABASE ${DEMO_TEAMS_DATABASE}`);
  await seedTeams(withDatabase(url, DEMO_TEAMS_DATABASE), 200);
  return { seeded: true };
}
