import { defineConfig } from 'vitest/config';

// Two projects: `unit` (pure code, plus tools such as helm that need no server) and `e2e`
// (a real control plane on loopback, started once per run by the global setup).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          testTimeout: 60_000,
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
