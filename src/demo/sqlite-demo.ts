import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSqliteTarget } from '../activities/sqlite/target.js';
import type { ServiceAdapter } from '../activities/adapters/types.js';
import { seedSqliteDatabase } from './sqlite-app/seed.js';
import { INITIAL_APP_FLAGS } from './sqlite-environment.js';

/** The demo SQLite application's database size when npm start creates it. */
const DEMO_DB_BYTES = 50_000_000;

/**
 * `npm start`'s SQLite application (environments/demo.yaml, target `app`): seeds `.data/demo/app/abathur.db`
 * (about 50 MB, all milestones) the first time, keeps it afterwards (a second start reuses what runbooks did to
 * it), and starts the service on 8790.
 */
export async function startSqliteDemo(
  environmentsDir: string,
): Promise<{ service: ServiceAdapter; db: string; seeded: boolean }> {
  const t = await loadSqliteTarget(environmentsDir, { environment: 'demo', target: 'app' });
  mkdirSync(join(t.db, '..'), { recursive: true });
  const flags = t.config.flags?.type === 'env-file' ? t.loaded.resolvePath(t.config.flags.path) : undefined;
  if (flags && !existsSync(flags)) writeFileSync(flags, INITIAL_APP_FLAGS);
  const seeded = !existsSync(t.db);
  if (seeded) await seedSqliteDatabase(t.db, { targetBytes: DEMO_DB_BYTES });
  const service = t.services.api!;
  await service.stop();
  await service.start();
  return { service, db: t.db, seeded };
}
