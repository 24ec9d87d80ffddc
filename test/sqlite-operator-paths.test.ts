import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunbookResult } from '../src/shared/types.js';
import { runbook, temporal, temporalStart } from './support/cli.js';
import { Harness } from './support/harness.js';
import { sqliteTarget } from './support/sqlite.js';

/** The SQLite backup started the ways operators start runbooks: our CLI and the temporal CLI. */
const h = new Harness();
beforeAll(() => h.start());
afterAll(() => h.close());

const backupsIn = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.db.gz'));

describe('sqlite-backup from the runbook CLI and the temporal CLI', () => {
  it('runbook start sqlite-backup … --wait: succeeded, exit 0, one backup', async () => {
    const t = await sqliteTarget(h, { seedBytes: 2_000_000 });
    const r = await runbook(
      [
        'start',
        'sqlite-backup',
        '--env',
        t.envName,
        '--target',
        'app',
        '--requester',
        'rita',
        '--reason',
        'before the migration',
        '--input',
        '{"tag":"manual"}',
        '--wait',
      ],
      h.env(),
    );
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(backupsIn(t.backupsDir)).toEqual([expect.stringMatching(/-manual[a-z0-9]{6}\.db\.gz$/)]);
  });

  it('temporal workflow start --type sqliteBackup: the same run, visible to temporal workflow show', async () => {
    const t = await sqliteTarget(h, { seedBytes: 2_000_000 });
    const id = `tctl-sqlite-backup-${h.taskQueue}`;
    const started = await temporalStart(h, 'sqliteBackup', id, {
      environment: t.envName,
      target: 'app',
      requester: 'rita',
      reason: 'by hand',
    });
    expect(started.code, started.stderr).toBe(0);
    const result = (await h.client.workflow.getHandle(id).result()) as RunbookResult;
    expect(result.outcome).toBe('succeeded');
    expect(backupsIn(t.backupsDir)).toHaveLength(1);
    const shown = await temporal(['workflow', 'show', '--workflow-id', id], h.address);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('ActivityTaskCompleted');
    expect(shown.stdout).toMatch(/WorkflowExecutionCompleted/);
  });
});
