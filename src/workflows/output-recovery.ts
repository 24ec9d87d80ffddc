import { executeChild, workflowInfo } from '@temporalio/workflow';
import type { MigrationActivities } from '../activities/migration/index.js';
import type { OutputActivities, OutputRecoveryPlan } from '../activities/migration/outputs.js';
import { countsLine } from '../shared/counts.js';
import { invalidInput, parseRunbookInput, tightenApproval } from '../shared/input.js';
import { outputRecoveryInputSchema, type JobReplayInput, type OutputRecoveryInput } from '../shared/schemas.js';
import type { RunbookResult } from '../shared/types.js';
import { runbookActivities } from './engine/activity-options.js';
import { Runbook } from './engine/runbook.js';

const acts = runbookActivities<OutputActivities & MigrationActivities>('quick');
const long = runbookActivities<OutputActivities>('long');
const undo = runbookActivities<OutputActivities & MigrationActivities>('longUndo');

/** the child that replays the jobs no backup restores (src/workflows/job-replay.ts) */
const REPLAY_WORKFLOW = 'jobReplay';

export const OUTPUT_RECOVERY_STEPS = [
  'load environment',
  'detect corrupt outputs',
  'seal plan',
  'approval',
  'stop processor',
  'quarantine outputs',
  'restore from backup',
  'start processor',
  'verify healthy',
  'replay jobs',
  'verify outputs',
] as const;

/**
 * Output corruption recovery (seed "Data Corruption Recovery"): load → detect run directories whose summaries are
 * empty, truncated (no END), unparsable or disagree with manifest.json (since a time, optional) → plan (counts,
 * the list as a file in migration.workDir named by its sha256, a sample; the exact replay input's digest under
 * `covers`) → approval → stop the processor (undo: start it) → quarantine each bad run directory (undo registered
 * before: move them back) → restore the runs whose backup copy verifies against its manifest (undo before: remove
 * the restored copies) → start the processor → healthy → replay the jobs of the other runs as a child `jobReplay`
 * (it shares this run's target lock, and its approval is this plan's: the engine checks the parent's approved
 * plan covers its exact input) → verify every restored run is sound and every replayed job has a sound output.
 */
export async function outputRecovery(rawInput: OutputRecoveryInput): Promise<RunbookResult> {
  const input = parseRunbookInput(outputRecoveryInputSchema, rawInput);
  const ref = { environment: input.environment, target: input.target };
  const info = workflowInfo();
  const childId = `${info.workflowId}--replay`;
  const rb = new Runbook({
    runbook: 'output-recovery',
    ...ref,
    requester: input.requester,
    reason: input.reason,
    dryRun: input.dryRun,
    steps: OUTPUT_RECOVERY_STEPS,
    lockWait: input.lockWait,
  });
  let plan: OutputRecoveryPlan | undefined;
  let replay: { workflowId: string; outcome: string } | undefined;

  return rb.run(
    async () => {
      const target = await rb.step('load environment', () => acts.describeMigrationTarget(ref), {
        summarize: (t) => `${t.jobs}; services ${Object.keys(t.services).join(', ')}`,
      });
      rb.usePolicy(tightenApproval(target.approval, input.approval), target.escalation);
      const known = [target.backends.old, target.backends.new];
      if (input.backend !== undefined && !known.includes(input.backend))
        throw invalidInput(`backend: "${input.backend}" is not a backend of this target (${known.join(', ')})`);
      // the child's input but its job list: the plan covers exactly this input with the jobs detected
      const replayBase: Omit<JobReplayInput, 'jobs'> | undefined = input.replay
        ? {
            ...ref,
            requester: input.requester,
            reason: `output-recovery ${info.workflowId}: replay the jobs whose outputs were corrupt`,
            ...(input.incidentTicket !== undefined && { incidentTicket: input.incidentTicket }),
            ...(input.backend !== undefined && { backend: input.backend }),
          }
        : undefined;

      const p = await rb.step(
        'detect corrupt outputs',
        () =>
          long.detectCorruptOutputs({
            ...ref,
            since: input.since,
            dryRun: input.dryRun,
            replayChild: replayBase && { workflowType: REPLAY_WORKFLOW, input: replayBase },
          }),
        {
          summarize: (x) =>
            `${x.total} of ${x.scanned} runs corrupt (${countsLine(x.counts)}); ${x.restorable} restorable from backup, ` +
            `${x.replayJobs.length} jobs to replay; plan sha256 ${x.sha256.slice(0, 12)}`,
        },
      );
      plan = p;
      rb.publish('recovery', {
        corrupt: p.total,
        counts: p.counts,
        restorable: p.restorable,
        replay: p.replayJobs.length,
      });

      if (p.total === 0) {
        await rb.seal({ summary: `no corrupt outputs among ${p.scanned} runs of ${p.outputsDir}`, changes: [] });
        for (const s of OUTPUT_RECOVERY_STEPS.slice(OUTPUT_RECOVERY_STEPS.indexOf('approval')))
          rb.skip(s, 'no corrupt outputs');
        return;
      }
      const replaying = replayBase !== undefined && p.replayJobs.length > 0;
      await rb.approval({
        summary:
          `quarantine ${p.total} corrupt output runs (${countsLine(p.counts)}) of ${p.outputsDir} into ${p.quarantineDir}, ` +
          `restore ${p.restorable} from ${p.backupDir ?? 'no backup'}` +
          (replaying
            ? `, replay ${p.replayJobs.length} jobs exactly once in child ${REPLAY_WORKFLOW} ${childId}` +
              (input.backend ? ` on ${input.backend}` : '')
            : p.replayJobs.length
              ? `; ${p.replayJobs.length} jobs are NOT replayed (replay: false)`
              : '') +
          `; the processor is stopped meanwhile`,
        changes: [
          { item: `${p.total} output runs`, from: p.outputsDir, to: p.quarantineDir },
          ...(p.restorable
            ? [{ item: `${p.restorable} output runs`, from: p.backupDir ?? null, to: p.outputsDir }]
            : []),
          ...(replaying ? [{ item: `${p.replayJobs.length} jobs`, from: 'completed', to: `queue (${childId})` }] : []),
          { item: 'processor services', from: 'running', to: 'stopped during quarantine and restore' },
        ],
        details: {
          planFile: p.file ?? { sha256: p.sha256, total: p.total },
          counts: p.counts,
          restorable: p.restorable,
          quarantineOnly: p.quarantineOnly,
          incompleteRuns: p.incomplete,
          since: input.since,
          sample: p.sample,
          replay: replaying
            ? {
                workflowType: REPLAY_WORKFLOW,
                workflowId: childId,
                jobs: p.replayJobs.length,
                jobsSha256: p.replayJobsSha256,
                jobsSample: p.replayJobs.slice(0, 20),
                backend: input.backend,
              }
            : undefined,
          // what this approval covers of the child: the digest of its exact input (job list included)
          covers: replaying && p.cover ? [p.cover] : [],
          reason: input.reason,
        },
      });
      const planRef = { ...ref, plan: p.sha256 };

      await rb.step('stop processor', () => acts.restartServices({ ...ref, action: 'stop' }), {
        undo: () => undo.restartServices({ ...ref, action: 'start' }),
        summarize: (s) => `stopped ${s.map((x) => x.name).join(', ')}`,
      });
      await rb.step('quarantine outputs', () => long.quarantineOutputs({ ...planRef, workflowId: info.workflowId }), {
        undoBefore: () => undo.releaseQuarantine(planRef),
        summarize: (q) => `${q.moved + q.already} runs in ${q.dir}`,
      });
      if (p.restorable > 0)
        await rb.step('restore from backup', () => long.restoreOutputs(planRef), {
          undoBefore: () => undo.removeRestoredOutputs(planRef),
          summarize: (r) => `${r.restored + r.already} runs restored from ${p.backupDir}`,
        });
      else
        rb.skip(
          'restore from backup',
          p.backupDir ? 'no corrupt run has a verified backup copy' : 'no outputs.backupDir',
        );
      await rb.step('start processor', () => acts.restartServices({ ...ref, action: 'start' }), {
        summarize: (s) => `started ${s.map((x) => x.name).join(', ')}`,
      });
      await rb.step('verify healthy', () => acts.waitMigrationHealthy(ref), {
        summarize: (h) => `HTTP ${h.status} in ${h.ms} ms`,
      });

      if (replaying) {
        const child: JobReplayInput = { ...replayBase, jobs: p.replayJobs };
        const result = await rb.step(
          'replay jobs',
          () => executeChild(REPLAY_WORKFLOW, { workflowId: childId, args: [child] }) as Promise<RunbookResult>,
          { summarize: (r) => `${REPLAY_WORKFLOW} ${childId}: ${r.outcome}` },
        );
        replay = { workflowId: childId, outcome: result.outcome ?? 'succeeded' };
      } else
        rb.skip('replay jobs', p.replayJobs.length ? 'replay: false in the input' : 'every corrupt run was restored');

      await rb.step('verify outputs', () => long.verifyRecoveredOutputs({ ...planRef, replayed: replaying }), {
        summarize: (v) => `${v.restoredSound} restored runs sound, ${v.replayedWithOutput} replayed jobs with output`,
      });
    },
    () => ({
      ...(plan && {
        recovery: {
          plan: plan.sha256,
          corrupt: plan.total,
          counts: plan.counts,
          restorable: plan.restorable,
          replayJobs: plan.replayJobs.length,
          quarantineDir: plan.quarantineDir,
        },
      }),
      ...(replay && { replay }),
    }),
  );
}
