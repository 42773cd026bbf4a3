import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Engines start worker threads; forks keep each test file in its own process so they cannot leak.
    pool: 'forks',
    fileParallelism: false,
  },
});
