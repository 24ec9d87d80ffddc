/**
 * Compile-time checks (tsc runs over test/ in `npm test`): a runbook's step names are declared once, and a step
 * that is not declared does not compile. Nothing here runs.
 */
import type { FEATURE_FLAG_STEPS } from '../../src/workflows/feature-flag-rollback.js';
import type { DUAL_WRITE_STEPS } from '../../src/workflows/dual-write-rollback.js';
import type { Runbook } from '../../src/workflows/engine/runbook.js';

export function featureFlagSteps(rb: Runbook<(typeof FEATURE_FLAG_STEPS)[number]>): void {
  void rb.step('set flags', async () => 1);
  rb.skip('verify no dual writes', 'declared: compiles');
  // @ts-expect-error a step that is not declared does not compile
  void rb.step('set flag', async () => 1);
  // @ts-expect-error nor can it be skipped
  rb.skip('restart service', 'not declared');
}

export function dualWriteSteps(rb: Runbook<(typeof DUAL_WRITE_STEPS)[number]>): void {
  void rb.step('execute', async () => 1);
  // @ts-expect-error the other runbook's steps are not this one's
  void rb.step('set flags', async () => 1);
}
