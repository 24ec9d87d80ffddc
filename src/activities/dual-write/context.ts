import { Context } from '@temporalio/activity';
import type { Logger } from 'pino';
import { loadTarget, requireSection, withEnvironmentErrors, type LoadedTarget } from '../environment.js';
import type { OpenOptions, StoreFactory } from '../stores/index.js';
import type { ObjectStoreAdapter } from '../stores/types.js';
import type { DualWriteConfig } from '../../shared/schemas.js';
import type { Side } from './types.js';
import { openWorkStore, type WorkStore } from './work-store/index.js';

export interface DualWriteDeps {
  environmentsDir: string;
  stores: StoreFactory;
  log: Logger;
}

/** A dual-write target as its environment file describes it. */
export interface Target {
  t: LoadedTarget;
  dw: DualWriteConfig;
}

export type Stores = Record<Side, ObjectStoreAdapter>;

/** What the dual-write activities share: the target's configuration, its two stores, the run's work store. */
export class DualWriteContext {
  constructor(readonly deps: DualWriteDeps) {}

  get log(): Logger {
    return this.deps.log;
  }

  target(ref: { environment: string; target: string }): Promise<Target> {
    return withEnvironmentErrors(async () => {
      const t = await loadTarget(this.deps.environmentsDir, ref.environment, ref.target);
      return { t, dw: requireSection(t, 'dualWrite') };
    });
  }

  /** The run's work files, where the target keeps them (workDir or workStore). */
  work(target: Target, runKey: string): WorkStore {
    return openWorkStore(target.dw, target.t.resolvePath, runKey, this.deps.stores);
  }

  /**
   * Runs `fn` with both stores of the target open, and closes them after. `readOnly` (every activity that does
   * not repair): nothing in either store is created, migrated or written.
   */
  async withStores<T>(
    target: Target,
    options: Pick<OpenOptions, 'readOnly'>,
    fn: (stores: Stores) => Promise<T>,
  ): Promise<T> {
    const { t, dw } = target;
    const a = await this.deps.stores.open(dw.a, t.resolvePath, options);
    let b: ObjectStoreAdapter;
    try {
      b = await this.deps.stores.open(dw.b, t.resolvePath, options);
    } catch (error) {
      await a.close();
      throw error;
    }
    try {
      return await fn({ a, b });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }
}

/** Where a pass over a work file is: the phase and the number of lines done. */
export interface LineCursor<P extends string = string> {
  phase: P;
  line: number;
}

/** The cursor the last attempt heartbeated, when it is one of `phases`. */
export function resumeCursor<P extends string>(phases: readonly P[]): LineCursor<P> | undefined {
  const d = Context.current().info.heartbeatDetails as Partial<LineCursor> | undefined;
  if (!d || typeof d.line !== 'number' || !Number.isInteger(d.line) || d.line < 0) return undefined;
  return phases.includes(d.phase as P) ? (d as LineCursor<P>) : undefined;
}
