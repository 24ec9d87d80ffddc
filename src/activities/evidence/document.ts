import { join } from 'node:path';
import { canonicalJson } from '../../shared/canonical-json.js';
import type { Outcome } from '../../shared/constants.js';
import type {
  ApprovalPolicy,
  ApprovalRecord,
  ApprovalStage,
  CompensationRecord,
  EscalationRecord,
  EvidenceInput,
  LockRecord,
  PhaseTiming,
  Plan,
  RunbookStatus,
  StepRecord,
} from '../../shared/types.js';
import { sha256 } from '../digest.js';
import { buildChain, chainGenesis, type ChainKind, type ChainLink } from './chain.js';

export const EVIDENCE_FORMAT = 'durable-runbooks/evidence@2';

/**
 * Every fact the evidence states. The document holds them twice — as readable top-level fields and as the records
 * of the hash chain — and the top-level fields must equal what factsFromChain() derives from the chain, so no
 * fact can change without changing the chain head the worker signed and the workflow returned.
 */
export interface EvidenceFacts {
  runbook: string;
  workflowId: string;
  runId: string;
  /** v1: a run started before signed approvals (its plan hash covers the plan only) */
  engine: 'v1' | 'v2';
  environment: string;
  target: string;
  requester: string;
  reason: string;
  dryRun: boolean;
  startedAt: string;
  plan: Plan | null;
  planHash: string | null;
  approvalPolicy: ApprovalPolicy | null;
  steps: StepRecord[];
  approvals: ApprovalRecord[];
  approvalsDropped: number;
  /** per-stage approvals: each stage's plan, hash, policy and how it ended (null: a run with one gate) */
  stages: ApprovalStage[] | null;
  escalations: EscalationRecord[];
  compensations: CompensationRecord[];
  locks: LockRecord[];
  phases: PhaseTiming[];
  abort: NonNullable<RunbookStatus['abort']> | null;
  extra: Record<string, unknown> | null;
  outcome: Outcome | null;
  error: string | null;
  endedAt: string | null;
}
export const FACT_FIELDS = [
  'runbook',
  'workflowId',
  'runId',
  'engine',
  'environment',
  'target',
  'requester',
  'reason',
  'dryRun',
  'startedAt',
  'plan',
  'planHash',
  'approvalPolicy',
  'steps',
  'approvals',
  'approvalsDropped',
  'stages',
  'escalations',
  'compensations',
  'locks',
  'phases',
  'abort',
  'extra',
  'outcome',
  'error',
  'endedAt',
] as const satisfies ReadonlyArray<keyof EvidenceFacts>;

/** The worker's signature of the chain head: the anchor an auditor checks with a key they hold. */
export interface EvidenceSignature {
  keyId: string;
  publicKey: string;
  signature: string;
}

export interface EvidenceDocument extends EvidenceFacts {
  format: typeof EVIDENCE_FORMAT;
  chain: ChainLink[];
  chainHead: string;
  signature: EvidenceSignature | null;
}

export function factsOf({ status, extra }: EvidenceInput): EvidenceFacts {
  return {
    runbook: status.runbook,
    workflowId: status.workflowId,
    runId: status.runId,
    engine: status.engine ?? 'v1',
    environment: status.environment,
    target: status.target,
    requester: status.requester,
    reason: status.reason,
    dryRun: status.dryRun,
    startedAt: status.startedAt,
    plan: status.plan ?? null,
    planHash: status.planHash ?? null,
    approvalPolicy: status.approval.policy ?? null,
    steps: status.steps,
    approvals: status.approval.records,
    approvalsDropped: status.approval.dropped ?? 0,
    stages: status.approval.stages?.length ? status.approval.stages : null,
    escalations: status.escalation.history,
    compensations: status.compensations,
    locks: status.locks ?? [],
    phases: status.phases,
    abort: status.abort ?? null,
    extra: extra ?? null,
    outcome: status.outcome ?? null,
    error: status.error ?? null,
    endedAt: status.endedAt ?? null,
  };
}

/** The chain's records, in order: who/what/where, the plan, every step, decision, escalation, undo, lock, … */
export function chainEntries(f: EvidenceFacts): Array<{ kind: ChainKind; record: unknown }> {
  const { runbook, workflowId, runId, engine, environment, target, requester, reason, dryRun, startedAt } = f;
  return [
    { kind: 'run', record: { runbook, workflowId, runId, engine, environment, target, requester, reason, dryRun, startedAt } },
    { kind: 'plan', record: { plan: f.plan, planHash: f.planHash, approvalPolicy: f.approvalPolicy } },
    ...f.steps.map((record) => ({ kind: 'step' as const, record })),
    ...f.approvals.map((record) => ({ kind: 'approval' as const, record })),
    ...(f.stages ?? []).map((record) => ({ kind: 'stage' as const, record })),
    ...f.escalations.map((record) => ({ kind: 'escalation' as const, record })),
    ...f.compensations.map((record) => ({ kind: 'compensation' as const, record })),
    ...f.locks.map((record) => ({ kind: 'lock' as const, record })),
    { kind: 'phases', record: f.phases },
    { kind: 'abort', record: f.abort },
    { kind: 'extra', record: f.extra },
    {
      kind: 'outcome',
      record: { outcome: f.outcome, error: f.error, endedAt: f.endedAt, approvalsDropped: f.approvalsDropped },
    },
  ];
}

/** The facts as the chain states them; throws when a record the chain must have is missing. */
export function factsFromChain(chain: ChainLink[]): EvidenceFacts {
  const one = (kind: ChainKind): Record<string, any> => {
    const links = chain.filter((l) => l.kind === kind);
    if (links.length !== 1) throw new Error(`the chain has ${links.length} "${kind}" records (expected 1)`);
    return (links[0]!.record ?? null) as Record<string, any>;
  };
  const all = <T>(kind: ChainKind): T[] => chain.filter((l) => l.kind === kind).map((l) => l.record as T);
  const run = one('run');
  const plan = one('plan');
  const outcome = one('outcome');
  return {
    runbook: run.runbook,
    workflowId: run.workflowId,
    runId: run.runId,
    engine: run.engine,
    environment: run.environment,
    target: run.target,
    requester: run.requester,
    reason: run.reason,
    dryRun: run.dryRun,
    startedAt: run.startedAt,
    plan: plan.plan,
    planHash: plan.planHash,
    approvalPolicy: plan.approvalPolicy,
    steps: all('step'),
    approvals: all('approval'),
    approvalsDropped: outcome.approvalsDropped,
    stages: chain.some((l) => l.kind === 'stage') ? all<ApprovalStage>('stage') : null,
    escalations: all('escalation'),
    compensations: all('compensation'),
    locks: all('lock'),
    phases: one('phases') as unknown as PhaseTiming[],
    abort: one('abort') as EvidenceFacts['abort'],
    extra: one('extra'),
    outcome: outcome.outcome,
    error: outcome.error,
    endedAt: outcome.endedAt,
  };
}

/** The facts whose readable form differs from what the chain states (compared as canonical JSON). */
export function factsDifferingFromChain(doc: Record<string, unknown>, chain: ChainLink[]): string[] {
  const derived = factsFromChain(chain) as unknown as Record<string, unknown>;
  return FACT_FIELDS.filter((field) => canonicalJson(doc[field] ?? null) !== canonicalJson(derived[field] ?? null));
}

/**
 * The plan hash approvers quote. It covers the workflow id and run id (engine v2), so the same plan on another
 * run has another hash and an approval cannot be carried from one run to the next.
 */
export function planHashOf(workflowId: string, runId: string, plan: Plan, engine: 'v1' | 'v2' = 'v2'): string {
  return sha256(canonicalJson(engine === 'v1' ? plan : { workflowId, runId, plan }));
}

/**
 * A stage's plan hash (per-stage approvals): the stage's name is hashed with the run and the plan, so two stages
 * with the same plan still have different hashes and an approval signed for one cannot be replayed for another.
 */
export function stagePlanHashOf(workflowId: string, runId: string, stage: string, plan: Plan): string {
  return sha256(canonicalJson({ workflowId, runId, stage, plan }));
}

/** The text a worker signs: the chain head, bound to its run. */
export const evidenceSigningText = (workflowId: string, runId: string, chainHead: string): string =>
  `${EVIDENCE_FORMAT}\n${workflowId}\n${runId}\n${chainHead}`;

/** Builds the evidence document (without its signature): the facts, then a hash chain over them. */
export function buildEvidence(input: EvidenceInput): EvidenceDocument {
  const facts = factsOf(input);
  const chain = buildChain(chainGenesis(facts.workflowId, facts.runId), chainEntries(facts));
  return { format: EVIDENCE_FORMAT, ...facts, chain, chainHead: chain[chain.length - 1]!.hash, signature: null };
}

export function evidencePath(evidenceDir: string, runbook: string, startedAt: string, workflowId: string): string {
  const day = startedAt.slice(0, 10).replaceAll('-', '');
  return join(evidenceDir, runbook, day, `${workflowId.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);
}
