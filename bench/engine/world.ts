import type { Client } from '@temporalio/client';
import type { ChildEnv } from '../../test/support/child-worker.js';
import type { Resources } from '../support/resources.js';

/** What sections 1 and 2 run against (set up by bench/run.ts). */
export interface EngineWorld {
  address: string;
  client: Client;
  /** bench/engine/workflows.ts, bundled once */
  bundlePath: string;
  /** holds the bench environment (target noop) */
  environmentsDir: string;
  evidenceDir: string;
  /** the run's temp dir: logs */
  root: string;
  resources: Resources;
  /** the environment of a child worker (worker-child.ts) */
  child: ChildEnv;
  log: (message: string) => void;
}
