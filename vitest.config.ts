import { defineConfig } from 'vitest/config';

// unit: *.test.ts (no network, no worker); int: *.int.test.ts (real mediasoup workers, a private
// redis-server, real sockets); e2e: *.e2e.test.ts (Debian's Chromium driving the demo pages).
// Integration and end-to-end files run one at a time: they start real processes on 2 cores.
const exclude = ['**/node_modules/**', '**/dist/**'];
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['*/test/**/*.test.ts'],
          exclude: [...exclude, '**/*.int.test.ts', '**/*.e2e.test.ts'],
        },
      },
      {
        test: {
          name: 'int',
          include: ['*/test/**/*.int.test.ts'],
          exclude,
          globalSetup: ['testing/src/globalSetup.ts'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['*/test/**/*.e2e.test.ts'],
          exclude,
          globalSetup: ['testing/src/globalSetup.ts'],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
