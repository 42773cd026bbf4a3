import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // src/ imports '#platform' (package.json "imports", which points into dist/): tests run the sources
    alias: { '#platform': fileURLToPath(new URL('./src/platform/node.ts', import.meta.url)) },
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Engines start worker threads; forks keep each test file in its own process so they cannot leak.
    pool: 'forks',
    fileParallelism: false,
  },
});
