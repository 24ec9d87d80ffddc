import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Two projects. `dev-server`: the whole suite against one Temporal dev server (test/global-setup.ts). `cluster`: the
 * crash, restart and partition tests against a Temporal cluster of separate service processes on PostgreSQL
 * (test/cluster/global-setup.ts), after the first project, one file at a time (its tests restart shared services).
 * `npx vitest run --project cluster` runs the second alone.
 */
export default defineConfig({
  test: {
    setupFiles: ['test/support/quiet-runtime.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // `vitest run` exits the process once closing takes longer than this (default 10 s), global teardowns included:
    // theirs stop the cluster, dev server and Postgres and then remove their temporary data directories
    teardownTimeout: 60_000,
    reporters: ['default'],
    allowOnly: false,
    projects: [
      {
        extends: true,
        test: {
          name: 'dev-server',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/cluster/**'],
          globalSetup: ['test/global-setup.ts'],
          maxWorkers: 2,
        },
      },
      {
        extends: true,
        test: {
          name: 'cluster',
          include: ['test/cluster/**/*.test.ts', 'test/worker-crash.test.ts'],
          globalSetup: ['test/cluster/global-setup.ts'],
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
