import { Client, Connection } from '@temporalio/client';
import type { ChildEnv } from '../../test/support/child-worker.js';
import type { Resources } from '../support/resources.js';

/** What sections 1 and 2 run against (set up by bench/run.ts, on the dev server and on a cluster). */
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

/** What does not depend on the server: the bundle, the directories, the run's resources and log. */
export type EngineBase = Omit<EngineWorld, 'address' | 'client' | 'child'>;

/** The world of the server at `address`: a client (closed with `base.resources`) and its child workers' environment. */
export async function connectEngineWorld(address: string, base: EngineBase): Promise<EngineWorld> {
  const connection = await Connection.connect({ address });
  base.resources.add(() => connection.close());
  return {
    ...base,
    address,
    client: new Client({ connection }),
    child: {
      env: (extra = {}) => ({
        ...process.env,
        TEMPORAL_ADDRESS: address,
        WORKFLOW_BUNDLE_PATH: base.bundlePath,
        EVIDENCE_DIR: base.evidenceDir,
        ENVIRONMENTS_DIR: base.environmentsDir,
        ...extra,
      }),
    },
  };
}
