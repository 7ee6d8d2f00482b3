import { configDefaults, defineConfig } from 'vitest/config';

// Three projects: `unit` (pure code, plus tools such as helm that need no server), `integration`
// (real PostgreSQL processes and an S3 server on loopback, started by each test file) and `e2e`
// (a real control plane on loopback, started once per run by the global setup).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          // Unit tests sit beside the module they cover (src/**/x.test.ts); test/chart checks the chart.
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/integration/**'],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['e2e/**/*.test.ts'],
          globalSetup: ['e2e/harness/global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 600_000,
          // One control plane per run; files run one after another so they do not starve it.
          fileParallelism: false,
        },
      },
    ],
  },
});
