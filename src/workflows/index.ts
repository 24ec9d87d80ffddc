/** The one workflowsPath: every runbook is exported from here. */
export { featureFlagRollback } from './feature-flag-rollback.js';
