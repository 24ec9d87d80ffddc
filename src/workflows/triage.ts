import { ActivityFailure, ApplicationFailure, executeChild, patched, workflowInfo } from '@temporalio/workflow';
import { ErrorType } from '../shared/constants.js';
import type { TriageActivities, TriageChild, TriagePlan } from '../activities/triage.js';
import { invalidInput, parseRunbookInput, tightenApproval } from '../shared/input.js';
import { triageInputSchema, type TriageInput } from '../shared/schemas.js';
import type { RunbookResult } from '../shared/types.js';
import { runbookActivities } from './engine/activity-options.js';
import { Runbook } from './engine/runbook.js';

const acts = runbookActivities<TriageActivities>('verify');

/** the declared steps; each child of the chain adds its own step (`run <n>/<total>: …`) once the plan is known */
export const TRIAGE_STEPS = ['measure symptoms', 'seal plan', 'approval', 'take other targets'] as const;

const childStep = (c: TriageChild, i: number, n: number): string =>
  `run ${i + 1}/${n}: ${c.runbook}${typeof c.input.mode === 'string' ? ` ${c.input.mode}` : ''} on ${c.target}`;

/** A child run that ended without failing the workflow but did not succeed: its result stops the chain. */
class ChildEnded extends Error {
  constructor(readonly result: RunbookResult) {
    super(`${result.runbook} ${result.outcome}${result.error ? `: ${result.error}` : ''}`);
  }
}

interface ChildOutcome {
  /** its place in the chain, `2/3` */
  run?: string;
  workflowId: string;
  runbook: string;
  target: string;
  symptom: string;
  /** covered: passed its gate on this run's approval; own: waited for its own approval of its own plan */
  approval?: 'covered' | 'own';
  /** who approved it (own approval) */
  approvedBy?: string[];
  outcome: string;
  evidence?: { path: string; sha256: string; chainHead: string };
  error?: string;
}

/**
 * Triage (seed: the rollback decision matrix): measure the symptoms the environment's `triage.matrix` says how to
 * measure (health, error rate / latency / the inconsistency gauge from metrics), merge the operator's symptoms,
 * propose the chain of runbooks (most urgent first, each with its target and exact input), and after ONE approval
 * run each as a child workflow in order. Children share this run's target locks (it takes the other targets they
 * act on first) and pass their gates on this approval (the plan lists each child's input digest under `covers`) —
 * except children whose plan is the decision (RUNBOOKS[…].ownApproval: test-data-cleanup's exact rows, a restore's
 * backup, a repair's objects): they are not in `covers` and each waits for its own approval of its own plan
 * (`runbook status` of this run names the child waiting and how to approve it); a rejection stops the chain.
 * The chain stops at the first child that does not succeed; that child undid its own change, the earlier
 * children's changes are kept (they are the mitigation), and the run fails naming it. Monitor-only rows change
 * nothing: the plan records them and the run ends after sealing it.
 */
export async function triage(rawInput: TriageInput): Promise<RunbookResult> {
  const input = parseRunbookInput(triageInputSchema, rawInput);
  const ref = { environment: input.environment, target: input.target };
  const rb = new Runbook<string>({
    runbook: 'triage',
    ...ref,
    requester: input.requester,
    reason: input.reason,
    dryRun: input.dryRun,
    steps: TRIAGE_STEPS,
    lockWait: input.lockWait,
  });
  let plan: TriagePlan | undefined;
  const children: ChildOutcome[] = [];

  return rb.run(
    async () => {
      const p = await rb.step(
        'measure symptoms',
        () =>
          acts
            .planTriage({
              ...ref,
              symptoms: input.symptoms,
              measure: !input.noMeasure,
              workflowId: workflowInfo().workflowId,
              requester: input.requester,
              reason: input.reason,
              ...(input.incidentTicket !== undefined && { incidentTicket: input.incidentTicket }),
            })
            .catch((err: unknown) => {
              // an unknown symptom: the input is wrong, not the run (nothing was changed)
              const cause = err instanceof ActivityFailure ? err.cause : undefined;
              if (cause instanceof ApplicationFailure && cause.type === ErrorType.InvalidInput)
                throw invalidInput(cause.message);
              throw err;
            }),
        {
          summarize: (x) =>
            `${x.rows.map((r) => `${r.symptom} (${r.urgency})`).join(', ') || 'no symptom'}; ` +
            `${x.chain.length} runbooks to run`,
        },
      );
      plan = p;
      rb.usePolicy(tightenApproval(p.approval, input.approval), p.escalation);
      rb.publish('symptoms', p.readings);
      const monitor = p.rows.filter((r) => r.monitorOnly).map((r) => r.symptom);
      const summary =
        p.chain.length === 0
          ? p.rows.length === 0
            ? `no symptom of the decision matrix measured or reported on ${input.environment}/${input.target}`
            : `monitor only: ${monitor.join(', ')} (no runbook in the matrix for it)`
          : `${p.rows.map((r) => `${r.symptom} (${r.urgency.toUpperCase()})`).join(', ')} → ` +
            p.chain.map((c, i) => childStep(c, i, p.chain.length)).join(' → ') +
            approvalNote(p.chain) +
            (monitor.length ? `; monitor only: ${monitor.join(', ')}` : '');
      const sealed = {
        summary,
        changes: p.chain.map((c) => ({ item: `${c.runbook} on ${c.target}`, from: null, to: c.workflowId })),
        details: {
          readings: p.readings,
          rows: p.rows,
          chain: p.chain.map((c) => ({
            runbook: c.runbook,
            workflowType: c.workflowType,
            workflowId: c.workflowId,
            target: c.target,
            symptom: c.symptom,
            urgency: c.urgency,
            input: c.input,
            ...(c.ownApproval !== undefined && { ownApproval: c.ownApproval }),
          })),
          // what this approval covers: each child's workflow type and the sha256 of its exact input (children that
          // need their own approval of their own plan are not listed)
          covers: p.covers,
          reason: input.reason,
        },
      };
      if (p.chain.length === 0) {
        await rb.seal(sealed);
        rb.skip('approval', 'nothing to change');
        rb.skip('take other targets', 'nothing to change');
        return;
      }
      await rb.approval(sealed);
      if (p.otherTargets.length)
        await rb.step(
          'take other targets',
          async () => {
            for (const t of p.otherTargets) await rb.lockAlso(t);
          },
          { summarize: () => `${p.otherTargets.join(', ')} held for the chain` },
        );
      else rb.skip('take other targets', `every runbook acts on ${input.target}`);

      const steps = p.chain.map((c, i) => childStep(c, i, p.chain.length));
      // status shows the chain as it goes; `runbook status` shows the approval a running child waits for
      rb.publish('children', children);
      for (const [i, c] of p.chain.entries()) {
        const entry: ChildOutcome = {
          run: `${i + 1}/${p.chain.length}`,
          workflowId: c.workflowId,
          runbook: c.runbook,
          target: c.target,
          symptom: c.symptom,
          approval: c.ownApproval === undefined ? 'covered' : 'own',
          outcome: 'running',
        };
        children.push(entry);
        try {
          const result = await rb.step(
            steps[i]!,
            async () => {
              const r = (await executeChild(c.workflowType, {
                workflowId: c.workflowId,
                args: [c.input],
              })) as RunbookResult;
              // a child that ended without failing but did not succeed (rejected, timed out, aborted, busy,
              // escalated) stops the chain too; runs that went on past one before this rule replay as they ran
              if (r.outcome !== 'succeeded' && patched('triage-stop-on-unsuccessful-child')) throw new ChildEnded(r);
              return r;
            },
            { summarize: (r) => `${c.workflowId}: ${r.outcome}` },
          );
          entry.outcome = result.outcome;
          if (entry.approval === 'own') entry.approvedBy = result.approval.approvedBy;
          if (result.evidence)
            entry.evidence = {
              path: result.evidence.path,
              sha256: result.evidence.sha256,
              chainHead: result.evidence.chainHead,
            };
        } catch (err) {
          const details =
            err instanceof ChildEnded
              ? err.result
              : ((err as { cause?: { details?: unknown[] } }).cause?.details?.[0] as RunbookResult | undefined);
          entry.outcome = details?.outcome ?? 'failed';
          if (entry.approval === 'own' && details?.approval) entry.approvedBy = details.approval.approvedBy;
          if (details?.evidence)
            entry.evidence = {
              path: details.evidence.path,
              sha256: details.evidence.sha256,
              chainHead: details.evidence.chainHead,
            };
          entry.error = (err as { cause?: Error }).cause?.message ?? (err as Error).message;
          for (const later of steps.slice(i + 1)) rb.skip(later, `not started: ${c.workflowId} ${entry.outcome}`);
          throw ApplicationFailure.nonRetryable(
            `chain stopped: ${c.runbook} ${c.workflowId} on ${c.target} ${entry.outcome}: ${entry.error}`,
          );
        }
      }
    },
    () => ({
      ...(plan && { symptoms: plan.readings, rows: plan.rows }),
      children,
    }),
  );
}

/** What the one approval covers, and which children ask for their own approval of their own plan. */
function approvalNote(chain: TriageChild[]): string {
  const own = chain.flatMap((c, i) => (c.ownApproval === undefined ? [] : [{ c, run: i + 1 }]));
  if (!own.length) return '; one approval covers the chain, which stops at the first runbook that fails';
  const covered = chain.flatMap((c, i) => (c.ownApproval === undefined ? [i + 1] : []));
  return (
    `; this approval covers ${covered.length ? `run ${covered.join(', ')}` : 'no run'}; ` +
    own
      .map(({ c, run }) => `run ${run} (${c.runbook} on ${c.target}) asks for its own approval: ${c.ownApproval}`)
      .join('; ') +
    '; the chain stops at the first runbook that does not succeed'
  );
}
