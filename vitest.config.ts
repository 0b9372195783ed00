import { defineConfig } from 'vitest/config';

// GPU tests share one lavapipe device per file; on a 2-core machine running files one at a time is
// faster than fighting over the cores, and keeps peak memory small.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
