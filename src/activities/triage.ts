import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../shared/constants.js';
import { RUNBOOKS } from '../shared/runbooks.js';
import { describeZodError, TRIAGE_URGENCIES, type TriageMeasure, type TriageRow } from '../shared/schemas.js';
import type { ApprovalPolicy, EscalationLevel } from '../shared/types.js';
import { coverDigest, type ChildCover } from './cover.js';
import { approvalPolicyOf, EnvironmentError, loadEnvironment, withEnvironmentErrors } from './environment.js';
import { pollHttp } from './health.js';
import { parsePrometheusText } from './migration/prometheus.js';

export interface TriageRequest {
  environment: string;
  target: string;
  symptoms: string[];
  measure: boolean;
  /** the triage run's workflow id: children are named after it */
  workflowId: string;
  requester: string;
  reason: string;
  incidentTicket?: string;
}

export interface SymptomReading {
  symptom: string;
  /** how it was seen: measured (with the reading) or reported by the operator */
  source: 'measured' | 'reported';
  present: boolean;
  reading?: string;
}

export interface TriageChild {
  symptom: string;
  urgency: (typeof TRIAGE_URGENCIES)[number];
  runbook: string;
  workflowType: string;
  workflowId: string;
  target: string;
  /** the child's exact input (its digest is what the approval covers, unless it needs its own approval) */
  input: Record<string, unknown>;
  digest: string;
  /** why this child waits for its own approval of its own plan (RUNBOOKS[…].ownApproval): not in `covers` */
  ownApproval?: string;
}

export interface TriagePlan {
  approval: ApprovalPolicy;
  escalation: EscalationLevel[];
  readings: SymptomReading[];
  /** the rows found present, most urgent first */
  rows: Array<{ symptom: string; urgency: string; description?: string; note?: string; monitorOnly: boolean }>;
  chain: TriageChild[];
  covers: ChildCover[];
  /** targets other than the run's own that children act on (the run takes them before the chain) */
  otherTargets: string[];
}

const invalid = (message: string) => ApplicationFailure.nonRetryable(message, ErrorType.InvalidInput);

/** The sum of the samples of `metric` whose labels include `labels`, from Prometheus text; undefined: none. */
export function sumSamples(text: string, metric: string, labels: Record<string, string>): number | undefined {
  let sum: number | undefined;
  for (const s of parsePrometheusText(text)) {
    if (s.name !== metric || Object.entries(labels).some(([k, v]) => s.labels[k] !== v)) continue;
    if (Number.isFinite(s.value)) sum = (sum ?? 0) + s.value;
  }
  return sum;
}

export const createTriageActivities = (deps: { environmentsDir: string }) => {
  async function measure(
    m: TriageMeasure,
    health: { url: string; expectStatus: number; expectBody?: string; timeout: string } | undefined,
    where: string,
  ): Promise<{ present: boolean; reading: string }> {
    if (m.type === 'health') {
      if (!health) throw new EnvironmentError(`${where}: measure health: the target has no health.http`);
      try {
        const ok = await pollHttp({ ...health, within: '0s' });
        return { present: false, reading: `${ok.url}: HTTP ${ok.status}` };
      } catch (err) {
        return { present: true, reading: (err as Error).message };
      }
    }
    let text: string;
    try {
      const response = await fetch(m.url, { signal: AbortSignal.timeout(5000) });
      if (!response.ok) return { present: false, reading: `${m.url}: HTTP ${response.status}; not measured` };
      text = await response.text();
    } catch (err) {
      return { present: false, reading: `${m.url}: ${(err as Error).message}; not measured` };
    }
    let value: number | undefined;
    try {
      value = sumSamples(text, m.metric, m.labels);
    } catch (err) {
      return { present: false, reading: `${m.url}: ${(err as Error).message}; not measured` };
    }
    if (value === undefined) return { present: false, reading: `${m.metric} not exported by ${m.url}` };
    return { present: value > m.above, reading: `${m.metric} = ${value} (present above ${m.above})` };
  }

  return {
    /**
     * Read-only: loads the environment's decision matrix, measures what it can, merges the operator's symptoms and
     * builds the chain of child runbooks (each input checked by its runbook's schema, with the digest the plan covers).
     */
    async planTriage(req: TriageRequest): Promise<TriagePlan> {
      return withEnvironmentErrors(async () => {
        const env = await loadEnvironment(deps.environmentsDir, req.environment);
        const own = env.config.targets[req.target];
        if (!own)
          throw new EnvironmentError(
            `${env.file}: targets.${req.target}: unknown target (known: ${Object.keys(env.config.targets).join(', ')})`,
          );
        const matrix = env.config.triage?.matrix;
        if (!matrix) throw new EnvironmentError(`${env.file}: triage.matrix: required by the triage runbook`);
        const known = new Set(matrix.map((r) => r.symptom));
        const unknown = req.symptoms.filter((s) => !known.has(s));
        if (unknown.length)
          throw invalid(`symptoms: unknown ${unknown.join(', ')} (triage.matrix has ${[...known].join(', ')})`);

        const readings: SymptomReading[] = [];
        for (const [i, row] of matrix.entries()) {
          if (req.symptoms.includes(row.symptom))
            readings.push({ symptom: row.symptom, source: 'reported', present: true });
          if (!req.measure || !row.measure) continue;
          const targetName = (row.measure.type === 'health' && row.measure.target) || req.target;
          const http = env.config.targets[targetName]?.health?.http;
          const r = await measure(row.measure, http, `${env.file}: triage.matrix[${i}]`);
          readings.push({ symptom: row.symptom, source: 'measured', ...r });
        }
        const present = (row: TriageRow) => readings.some((r) => r.symptom === row.symptom && r.present);
        const rank = (row: TriageRow) => TRIAGE_URGENCIES.indexOf(row.urgency);
        const rows = matrix
          .map((row, index) => ({ row, index }))
          .filter(({ row }) => present(row))
          .sort((a, b) => rank(a.row) - rank(b.row) || a.index - b.index);

        const chain: TriageChild[] = [];
        for (const { row, index } of rows) {
          for (const [j, step] of row.chain.entries()) {
            const where = `${env.file}: triage.matrix[${index}].chain[${j}]`;
            const def = RUNBOOKS[step.runbook];
            if (!def || step.runbook === 'triage')
              throw new EnvironmentError(`${where}.runbook: "${step.runbook}" is not a runbook triage can start`);
            const target = step.target ?? req.target;
            if (!env.config.targets[target]) throw new EnvironmentError(`${where}.target: unknown target "${target}"`);
            const input: Record<string, unknown> = {
              ...step.input,
              environment: req.environment,
              target,
              requester: req.requester,
              // no symptom in it: the same runbook answering two symptoms is one child
              reason: `triage ${req.workflowId}: ${req.reason}`,
              ...(req.incidentTicket !== undefined && { incidentTicket: req.incidentTicket }),
            };
            const parsed = def.schema.safeParse(input);
            if (!parsed.success) throw new EnvironmentError(`${where}.input: ${describeZodError(parsed.error)}`);
            const digest = coverDigest(def.workflowType, input);
            // the same runbook with the same input answers two symptoms once (its first, most urgent place)
            if (chain.some((c) => c.workflowType === def.workflowType && c.digest === digest)) continue;
            chain.push({
              symptom: row.symptom,
              urgency: row.urgency,
              runbook: step.runbook,
              workflowType: def.workflowType,
              workflowId: `${req.workflowId}--${chain.length + 1}-${step.runbook}`,
              target,
              input,
              digest,
              ...(def.ownApproval !== undefined && { ownApproval: def.ownApproval }),
            });
          }
        }
        return {
          approval: approvalPolicyOf(env),
          escalation: env.config.escalation,
          readings,
          rows: rows.map(({ row }) => ({
            symptom: row.symptom,
            urgency: row.urgency,
            ...(row.description !== undefined && { description: row.description }),
            ...(row.note !== undefined && { note: row.note }),
            monitorOnly: row.chain.length === 0,
          })),
          chain,
          // the parent's approval covers only children whose plan is their input; the others ask for their own
          covers: chain
            .filter((c) => c.ownApproval === undefined)
            .map((c) => ({ workflowType: c.workflowType, digest: c.digest })),
          otherTargets: [...new Set(chain.map((c) => c.target).filter((t) => t !== req.target))],
        };
      });
    },
  };
};
export type TriageActivities = ReturnType<typeof createTriageActivities>;
