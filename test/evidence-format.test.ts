import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  buildEvidence,
  EVIDENCE_FORMAT,
  evidencePath,
  factsDifferingFromChain,
  factsFromChain,
  planHashOf,
  stagePlanHashOf,
} from '../src/activities/evidence/document.js';
import { buildChain, chainGenesis, verifyChain, type ChainLink } from '../src/activities/evidence/chain.js';
import { sha256 } from '../src/activities/digest.js';
import { canonicalJson } from '../src/shared/canonical-json.js';
import type { RunbookStatus } from '../src/shared/types.js';

const hex = (s: string) => createHash('sha256').update(s).digest('hex');

describe('canonicalJson', () => {
  it('does not depend on key order, at any depth', () => {
    const a = { b: 1, a: { d: [{ y: 2, x: 1 }], c: 'x' } };
    const b = { a: { c: 'x', d: [{ x: 1, y: 2 }] }, b: 1 };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(canonicalJson(a)).toBe('{"a":{"c":"x","d":[{"x":1,"y":2}]},"b":1}');
  });

  it('keeps array order and drops undefined properties', () => {
    expect(canonicalJson([3, 1, 2])).toBe('[3,1,2]');
    expect(canonicalJson({ a: undefined, b: null })).toBe('{"b":null}');
    expect(canonicalJson({ a: undefined, b: null })).toBe(canonicalJson({ b: null }));
  });

  it('serializes primitives like JSON.stringify', () => {
    expect(canonicalJson('x')).toBe('"x"');
    expect(canonicalJson(1.5)).toBe('1.5');
    expect(canonicalJson(null)).toBe('null');
    expect(canonicalJson(true)).toBe('true');
  });

  it('distinguishes different values', () => {
    expect(canonicalJson({ a: 1 })).not.toBe(canonicalJson({ a: '1' }));
    expect(canonicalJson([1, 2])).not.toBe(canonicalJson([2, 1]));
  });
});

describe('sha256 and chainGenesis', () => {
  it('is the hex sha256 of the text', () => {
    expect(sha256('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256(Buffer.from('abc'))).toBe(sha256('abc'));
  });

  it('derives the genesis from workflow id and run id', () => {
    expect(chainGenesis('wf-1', 'run-1')).toBe(hex('durable-runbooks:wf-1:run-1'));
    expect(chainGenesis('wf-1', 'run-2')).not.toBe(chainGenesis('wf-1', 'run-1'));
  });
});

describe('buildChain / verifyChain', () => {
  const genesis = chainGenesis('feature-flag-rollback-demo-web-1', 'run-abc');
  const entries: Array<Pick<ChainLink, 'kind' | 'record'>> = [
    { kind: 'step', record: { name: 'read-flags', status: 'succeeded', attempts: 1 } },
    { kind: 'approval', record: { kind: 'approve', by: 'bob', accepted: true, at: '2025-03-04T10:01:00.000Z' } },
    { kind: 'step', record: { name: 'write-flags', status: 'succeeded', attempts: 2 } },
    { kind: 'outcome', record: { outcome: 'succeeded', planHash: 'abc', error: null } },
  ];
  const build = () => buildChain(genesis, entries);
  const head = (chain: ChainLink[]) => chain[chain.length - 1]!.hash;

  it('links each record to the previous hash', () => {
    const chain = build();
    expect(chain).toHaveLength(4);
    expect(chain[0]!.prevHash).toBe(genesis);
    expect(chain[0]!.hash).toBe(hex(`${genesis}\nstep\n${canonicalJson(entries[0]!.record)}`));
    for (let i = 1; i < chain.length; i++) expect(chain[i]!.prevHash).toBe(chain[i - 1]!.hash);
    expect(chain.map((l) => l.kind)).toEqual(['step', 'approval', 'step', 'outcome']);
    expect(chain[1]!.record).toBe(entries[1]!.record);
  });

  it('is deterministic and independent of key order in records', () => {
    const reordered = entries.map(({ kind, record }) => ({
      kind,
      record: Object.fromEntries(Object.entries(record as Record<string, unknown>).reverse()),
    }));
    expect(head(buildChain(genesis, reordered))).toBe(head(build()));
  });

  it('verifies an intact chain with no problems, also after a JSON round trip', () => {
    const chain = build();
    expect(verifyChain(genesis, chain, head(chain))).toEqual([]);
    const reread = JSON.parse(JSON.stringify(chain)) as ChainLink[];
    expect(verifyChain(genesis, reread, head(chain))).toEqual([]);
  });

  it('fails an empty chain and a missing head: there is nothing to vouch for', () => {
    expect(buildChain(genesis, [])).toEqual([]);
    expect(verifyChain(genesis, [], genesis)).toEqual(['chain: missing or empty']);
    expect(verifyChain(genesis, build(), undefined)).toEqual(['chainHead: missing']);
    expect(verifyChain(genesis, build(), '')).toEqual(['chainHead: missing']);
  });

  it('detects a changed record', () => {
    const chain = build();
    const original = head(chain);
    chain[1] = { ...chain[1]!, record: { ...(chain[1]!.record as object), by: 'mallory' } };
    const problems = verifyChain(genesis, chain, original);
    expect(problems[0]).toBe('chain[1] (approval): hash mismatch, the record was changed');
    // the next link no longer follows, and the recomputed head differs
    expect(problems).toContain('chain[2] (step): prevHash does not match the previous link');
    expect(problems[problems.length - 1]).toMatch(
      /^chain head [0-9a-f]{16}… does not match the recomputed [0-9a-f]{16}…$/,
    );
  });

  it('detects a changed kind', () => {
    const chain = build();
    chain[0] = { ...chain[0]!, kind: 'compensation' };
    expect(verifyChain(genesis, chain, head(build()))[0]).toBe(
      'chain[0] (compensation): hash mismatch, the record was changed',
    );
  });

  it('detects two reordered links', () => {
    const chain = build();
    const original = head(chain);
    [chain[1], chain[2]] = [chain[2]!, chain[1]!];
    const problems = verifyChain(genesis, chain, original);
    expect(problems).toContain('chain[1] (step): prevHash does not match the previous link');
    expect(problems).toContain('chain[2] (approval): prevHash does not match the previous link');
    expect(problems.some((p) => p.startsWith('chain head '))).toBe(true);
  });

  it('detects a dropped link', () => {
    const chain = build();
    const original = head(chain);
    chain.splice(2, 1);
    const problems = verifyChain(genesis, chain, original);
    expect(problems[0]).toBe('chain[2] (outcome): prevHash does not match the previous link');
    expect(problems.some((p) => p.startsWith('chain head '))).toBe(true);
  });

  it('detects a dropped last link even though every remaining link is consistent', () => {
    const chain = build();
    const original = head(chain);
    chain.pop();
    expect(verifyChain(genesis, chain, original)).toEqual([
      `chain head ${original.slice(0, 16)}… does not match the recomputed ${head(chain).slice(0, 16)}…`,
    ]);
  });

  it('detects a wrong head and a wrong genesis', () => {
    const chain = build();
    const wrong = '0'.repeat(64);
    expect(verifyChain(genesis, chain, wrong)).toEqual([
      `chain head ${wrong.slice(0, 16)}… does not match the recomputed ${head(chain).slice(0, 16)}…`,
    ]);
    const otherGenesis = chainGenesis('feature-flag-rollback-demo-web-1', 'run-other');
    expect(verifyChain(otherGenesis, chain, head(chain))[0]).toBe(
      'chain[0] (step): prevHash does not match the previous link',
    );
  });

  it('detects a forged link whose hash was recomputed but whose successors were not', () => {
    const chain = build();
    const original = head(chain);
    const record = { name: 'read-flags', status: 'failed', attempts: 1 };
    chain[0] = { kind: 'step', record, prevHash: genesis, hash: hex(`${genesis}\nstep\n${canonicalJson(record)}`) };
    expect(verifyChain(genesis, chain, original)).toEqual([
      'chain[1] (approval): prevHash does not match the previous link',
      'chain[1] (approval): hash mismatch, the record was changed',
      'chain[2] (step): prevHash does not match the previous link',
      'chain[2] (step): hash mismatch, the record was changed',
      'chain[3] (outcome): prevHash does not match the previous link',
      'chain[3] (outcome): hash mismatch, the record was changed',
      `chain head ${original.slice(0, 16)}… does not match the recomputed ${verifyHead(chain).slice(0, 16)}…`,
    ]);

    function verifyHead(links: ChainLink[]): string {
      return head(
        buildChain(
          genesis,
          links.map(({ kind, record: r }) => ({ kind, record: r })),
        ),
      );
    }
  });
});

/** A finished run as the workflow reports it: two steps, one rejected and one accepted approval, an escalation. */
function finishedRun(): RunbookStatus {
  return {
    runbook: 'feature-flag-rollback',
    workflowId: 'feature-flag-rollback/demo/web/20250304-100000',
    runId: '0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
    environment: 'demo',
    target: 'web',
    requester: 'alice',
    reason: 'dual writes failing',
    dryRun: false,
    startedAt: '2025-03-04T10:00:00.000Z',
    endedAt: '2025-03-04T10:07:30.000Z',
    phase: 'finalize',
    steps: [
      {
        name: 'read-flags',
        status: 'succeeded',
        destructive: false,
        startedAt: '2025-03-04T10:00:01.000Z',
        endedAt: '2025-03-04T10:00:02.000Z',
        attempts: 1,
        result: 'DUAL_WRITE=true',
      },
      {
        name: 'write-flags',
        status: 'succeeded',
        destructive: true,
        startedAt: '2025-03-04T10:05:00.000Z',
        endedAt: '2025-03-04T10:05:01.000Z',
        attempts: 2,
      },
    ],
    plan: { summary: 'disable dual write on demo/web', changes: [{ item: 'DUAL_WRITE', from: 'true', to: 'false' }] },
    planHash: 'a'.repeat(64),
    approval: {
      policy: { approvers: ['bob', 'carol'], quorum: 1, allowSelfApproval: false, timeout: '1h' },
      waiting: false,
      approvedBy: ['bob'],
      records: [
        {
          kind: 'approve',
          by: 'alice',
          planHash: 'a'.repeat(64),
          at: '2025-03-04T10:01:00.000Z',
          accepted: false,
          ignoredBecause: 'self-approval',
        },
        {
          kind: 'approve',
          by: 'bob',
          comment: 'go',
          planHash: 'a'.repeat(64),
          at: '2025-03-04T10:04:00.000Z',
          accepted: true,
        },
      ],
    },
    escalation: {
      level: 1,
      history: [
        {
          level: 1,
          at: '2025-03-04T10:00:03.000Z',
          reason: 'approval waiting',
          contact: 'on-call engineer',
          delivered: true,
        },
      ],
    },
    compensations: [],
    phases: [
      {
        phase: 'prepare',
        startedAt: '2025-03-04T10:00:00.000Z',
        endedAt: '2025-03-04T10:00:03.000Z',
        durationMs: 3000,
      },
      {
        phase: 'approval',
        startedAt: '2025-03-04T10:00:03.000Z',
        endedAt: '2025-03-04T10:04:00.000Z',
        durationMs: 237000,
      },
    ],
    outcome: 'succeeded',
  };
}

describe('buildEvidence', () => {
  it('chains every fact: the run, the plan, steps, approvals, escalations, compensations, locks, phases, abort, extra, outcome', () => {
    const status = finishedRun();
    const doc = buildEvidence({ status, extra: { flagsBefore: { DUAL_WRITE: 'true' } } });
    expect(doc.format).toBe(EVIDENCE_FORMAT);
    expect(doc.chain.map((l) => l.kind)).toEqual([
      'run',
      'plan',
      'step',
      'step',
      'approval',
      'approval',
      'escalation',
      'phases',
      'abort',
      'extra',
      'outcome',
    ]);
    expect(doc.chain[2]!.record).toEqual(status.steps[0]);
    expect(doc.chain[1]!.record).toEqual({
      plan: status.plan,
      planHash: status.planHash,
      approvalPolicy: status.approval.policy,
    });
    expect(doc.chain[10]!.record).toEqual({
      outcome: 'succeeded',
      error: null,
      endedAt: '2025-03-04T10:07:30.000Z',
      approvalsDropped: 0,
    });
    expect(doc.chainHead).toBe(doc.chain[10]!.hash);
    expect(doc.signature).toBeNull();
    expect(verifyChain(chainGenesis(status.workflowId, status.runId), doc.chain, doc.chainHead)).toEqual([]);
  });

  it('states each fact twice, readable and chained, and the two agree', () => {
    const status = finishedRun();
    const doc = buildEvidence({ status, extra: { note: 'x' } });
    expect(doc).toMatchObject({
      runbook: 'feature-flag-rollback',
      workflowId: status.workflowId,
      runId: status.runId,
      engine: 'v1',
      environment: 'demo',
      target: 'web',
      requester: 'alice',
      reason: 'dual writes failing',
      dryRun: false,
      outcome: 'succeeded',
      startedAt: status.startedAt,
      endedAt: status.endedAt,
      plan: status.plan,
      planHash: status.planHash,
      approvalPolicy: status.approval.policy,
      approvals: status.approval.records,
      escalations: status.escalation.history,
      compensations: [],
      locks: [],
      phases: status.phases,
      steps: status.steps,
      extra: { note: 'x' },
      abort: null,
    });
    const reread = JSON.parse(JSON.stringify(doc)) as typeof doc;
    expect(factsFromChain(reread.chain)).toEqual(JSON.parse(JSON.stringify(factsFromChain(doc.chain))));
    expect(factsDifferingFromChain(reread as never, reread.chain)).toEqual([]);
  });

  it('names every readable fact that no longer matches the chain', () => {
    const doc = JSON.parse(JSON.stringify(buildEvidence({ status: finishedRun(), extra: { a: 1 } })));
    doc.approvals[1].by = 'mallory';
    doc.outcome = 'failed';
    doc.plan.summary = 'something else';
    doc.extra.a = 2;
    doc.requester = 'eve';
    expect(factsDifferingFromChain(doc, doc.chain).sort()).toEqual([
      'approvals',
      'extra',
      'outcome',
      'plan',
      'requester',
    ]);
  });

  it('survives a JSON round trip: the written file still verifies', () => {
    const status = finishedRun();
    const doc = JSON.parse(JSON.stringify(buildEvidence({ status }))) as ReturnType<typeof buildEvidence>;
    expect(verifyChain(chainGenesis(doc.workflowId, doc.runId), doc.chain, doc.chainHead)).toEqual([]);
  });

  it('changes the head when any fact changes', () => {
    const head = buildEvidence({ status: finishedRun() }).chainHead;
    const variants: Array<(s: RunbookStatus) => void> = [
      (s) => (s.steps[1]!.attempts = 1),
      (s) => (s.approval.records[1]!.by = 'carol'),
      (s) => (s.escalation.history[0]!.delivered = false),
      (s) => s.compensations.push({ step: 'write-flags', status: 'succeeded', startedAt: 'x', endedAt: 'y' }),
      (s) => (s.outcome = 'failed'),
      (s) => (s.runId = 'another-run'),
      (s) => (s.requester = 'eve'),
      (s) => (s.plan!.summary = 'other'),
      (s) => (s.phases[0]!.durationMs = 1),
      (s) => (s.abort = { by: 'x', reason: 'y', at: 'z' }),
    ];
    for (const change of variants) {
      const status = finishedRun();
      change(status);
      expect(buildEvidence({ status }).chainHead).not.toBe(head);
    }
  });

  it('binds the plan hash to the run (engine v2); runs from before keep the plan-only hash', () => {
    const plan = finishedRun().plan!;
    expect(planHashOf('wf', 'run-1', plan)).toBe(sha256(canonicalJson({ workflowId: 'wf', runId: 'run-1', plan })));
    expect(planHashOf('wf', 'run-1', plan)).not.toBe(planHashOf('wf', 'run-2', plan));
    expect(planHashOf('wf', 'run-1', plan, 'v1')).toBe(sha256(canonicalJson(plan)));
  });
});

describe('per-stage approvals in the evidence', () => {
  const plan = { summary: 'restart the processor', changes: [] };
  const withStages = (): RunbookStatus => {
    const status = finishedRun();
    status.approval.stages = [
      {
        stage: 'level 1 approval',
        plan,
        planHash: stagePlanHashOf(status.workflowId, status.runId, 'level 1 approval', plan),
        policy: 'automatic',
        status: 'automatic',
        approvedBy: [],
        sealedAt: '2025-03-04T10:00:04.000Z',
      },
    ];
    return status;
  };

  it("chains each stage after the decisions; runs with one gate have no 'stage' record and read back null", () => {
    const doc = buildEvidence({ status: withStages() });
    expect(doc.chain.map((l) => l.kind).filter((k) => k === 'stage')).toHaveLength(1);
    expect(doc.stages).toEqual(withStages().approval.stages);
    expect(factsDifferingFromChain(JSON.parse(JSON.stringify(doc)), doc.chain)).toEqual([]);
    const single = buildEvidence({ status: finishedRun() });
    expect(single.stages).toBeNull();
    expect(factsFromChain(single.chain).stages).toBeNull();
    const tampered = JSON.parse(JSON.stringify(doc));
    tampered.stages[0].status = 'approved';
    expect(factsDifferingFromChain(tampered, tampered.chain)).toEqual(['stages']);
  });

  it('binds a stage plan hash to the stage: the same plan in two stages has two hashes', () => {
    expect(stagePlanHashOf('wf', 'run-1', 'level 1', plan)).toBe(
      sha256(canonicalJson({ workflowId: 'wf', runId: 'run-1', stage: 'level 1', plan })),
    );
    expect(stagePlanHashOf('wf', 'run-1', 'level 1', plan)).not.toBe(stagePlanHashOf('wf', 'run-1', 'level 2', plan));
    expect(stagePlanHashOf('wf', 'run-1', 'level 1', plan)).not.toBe(planHashOf('wf', 'run-1', plan));
  });
});

describe('evidencePath', () => {
  it('is <dir>/<runbook>/<YYYYMMDD>/<workflowId>.json', () => {
    expect(evidencePath('/var/evidence', 'feature-flag-rollback', '2025-03-04T23:59:59.999Z', 'ffr-demo-web-1')).toBe(
      join('/var/evidence', 'feature-flag-rollback', '20250304', 'ffr-demo-web-1.json'),
    );
  });

  it('replaces characters that are not safe in a file name', () => {
    const status = finishedRun();
    expect(evidencePath('evidence', status.runbook, status.startedAt, status.workflowId)).toBe(
      join('evidence', 'feature-flag-rollback', '20250304', 'feature-flag-rollback_demo_web_20250304-100000.json'),
    );
    expect(evidencePath('e', 'r', '2025-01-02T00:00:00Z', '../../etc/passwd')).toBe(
      join('e', 'r', '20250102', '.._.._etc_passwd.json'),
    );
  });
});
