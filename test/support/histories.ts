import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';

export const HISTORIES_DIR = join(process.cwd(), 'test', 'histories');

/**
 * With UPDATE_HISTORIES=1, stores the run's history under test/histories/ for the replay test, so a
 * non-deterministic change to a runbook fails CI. Without it, nothing is written; nor in the vitest project
 * `cluster`, which runs some of the same tests again (the dev-server project's histories are the ones kept).
 */
export async function saveHistory(
  client: Client,
  workflowId: string,
  name: string,
  runbook = 'feature-flag-rollback',
  /** a run other than the latest (a child's first run, before it continued as new) */
  runId?: string,
): Promise<void> {
  if (process.env.UPDATE_HISTORIES !== '1' || inject('clusterControlUrl')) return;
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  mkdirSync(HISTORIES_DIR, { recursive: true });
  // the history itself does not name its workflow id, and a run's decisions are bound to it: keep it beside
  const json = { workflowId, ...JSON.parse(historyToJSON(history)) };
  writeFileSync(join(HISTORIES_DIR, `${runbook}.${name}.json`), `${JSON.stringify(json, null, 2)}\n`);
}
