import { sha256 } from '../activities/digest.js';
import type { DriftClass } from '../activities/stores/diff.js';
import type { ObjectStoreAdapter, StoredObject } from '../activities/stores/types.js';

export interface DriftSpec {
  /** total logical objects */
  objects: number;
  /** how many objects of each class to inject (taken from distinct, spread-out indices) */
  drift: Partial<Record<DriftClass, number>>;
  /** for content/metadata mismatches: which side carries the newer updatedAt */
  newer?: 'a' | 'b';
  batch?: number;
  /** base epoch ms for timestamps */
  baseTime?: number;
}

export interface InjectedDrift {
  objectId: string;
  version: number;
  class: DriftClass;
}

export const objectId = (i: number): string => `obj-${String(i).padStart(8, '0')}`;

function makeObject(i: number, base: number, variant = ''): StoredObject {
  const content = Buffer.from(`object ${i}${variant} `.repeat(1 + (i % 7)));
  return {
    objectId: objectId(i),
    version: 1 + (i % 3 === 0 ? 1 : 0),
    content,
    size: content.length,
    sha256: sha256(content),
    createdAt: base + i,
    updatedAt: base + i * 2,
  };
}

/**
 * Fills two stores with the same objects plus known drift, so detection can be checked for false positives and
 * negatives. Deterministic for the same spec.
 */
export async function seedDrift(
  a: ObjectStoreAdapter,
  b: ObjectStoreAdapter,
  spec: DriftSpec,
): Promise<InjectedDrift[]> {
  const base = spec.baseTime ?? Date.UTC(2026, 0, 1);
  const classes = Object.entries(spec.drift).flatMap(([cls, n]) =>
    Array.from({ length: n ?? 0 }, () => cls as DriftClass),
  );
  const stride = Math.max(1, Math.floor(spec.objects / Math.max(1, classes.length)));
  const driftAt = new Map<number, DriftClass>();
  classes.forEach((cls, k) => driftAt.set((k * stride + Math.floor(stride / 2)) % spec.objects, cls));
  if (driftAt.size !== classes.length) throw new Error('more drift than objects');
  const injected: InjectedDrift[] = [];
  const batch = spec.batch ?? 2000;
  let pa: StoredObject[] = [];
  let pb: StoredObject[] = [];
  const flush = async () => {
    await Promise.all([pa.length ? a.put(pa) : undefined, pb.length ? b.put(pb) : undefined]);
    pa = [];
    pb = [];
  };
  for (let i = 0; i < spec.objects; i++) {
    const o = makeObject(i, base);
    const cls = driftAt.get(i);
    if (cls) injected.push({ objectId: o.objectId, version: o.version, class: cls });
    const shift = spec.newer === 'a' ? -1000 : 1000;
    if (cls !== 'missing_in_a') pa.push(o);
    if (cls === 'content_mismatch') {
      const d = makeObject(i, base, '-drifted');
      pb.push({ ...d, version: o.version, updatedAt: o.updatedAt + shift });
    } else if (cls === 'metadata_mismatch') {
      pb.push({ ...o, updatedAt: o.updatedAt + shift });
    } else if (cls !== 'missing_in_b') {
      pb.push(o);
    }
    if (pa.length >= batch || pb.length >= batch) await flush();
  }
  await flush();
  return injected;
}

/** The demo pair of environments/demo.yaml (target `objects`): reset, then seeded with known drift. */
export async function seedDemoPair(databaseUrl: string, objectStoreRoot: string): Promise<InjectedDrift[]> {
  const { rmSync } = await import('node:fs');
  const { default: pg } = await import('pg');
  const { PostgresTableStore } = await import('../activities/stores/postgres-table.js');
  const { ObjectStore } = await import('../activities/stores/object-store.js');
  const pool = new pg.Pool({ connectionString: databaseUrl });
  try {
    await pool.query('DROP TABLE IF EXISTS demo_objects');
    rmSync(objectStoreRoot, { recursive: true, force: true });
    // stored fingerprints, as environments/demo.yaml configures them (the trigger is installed with the table)
    const a = new PostgresTableStore({ pool, table: 'demo_objects', create: true, columns: { fingerprint: 'row_fp' } });
    await a.init();
    const b = await ObjectStore.open(objectStoreRoot);
    const injected = await seedDrift(a, b, {
      objects: 2000,
      drift: { missing_in_a: 3, missing_in_b: 5, content_mismatch: 8, metadata_mismatch: 4 },
      newer: 'a',
    });
    await b.close();
    return injected;
  } finally {
    await pool.end();
  }
}
