import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Two layers (`vitest run --project unit` is `npm run test:unit`; `npm test` runs both):
// - unit: kernels against their references, schedules and schedulers, file formats, CLI parsing — seconds.
// - integration: everything else — whole networks, training, checkpoints, the CLI end to end from dist/,
//   examples and other runtimes. A new test file lands here unless it is added to UNIT below.
const UNIT = [
  'conv',
  'elementwise',
  'engine',
  'gaussian',
  'gaussian-math',
  'gemm',
  'norm',
  'optim',
  'random',
  'schedule',
  'scheduler',
  'scheduler-sampling',
  'bound',
  'safetensors',
  'png',
  'image-folder',
  'mlp',
  'unet-config',
  'eval-metrics',
  'cli-progress',
  'cli-args',
  'cli-plot',
  'imports',
  'bindings',
].map((name) => `test/${name}.test.ts`);

export default defineConfig({
  resolve: {
    // src/ imports '#platform' (package.json "imports", which points into dist/): tests run the sources
    alias: { '#platform': fileURLToPath(new URL('./src/platform/node.ts', import.meta.url)) },
  },
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Engines start worker threads; forks keep each test file in its own process so they cannot leak.
    pool: 'forks',
    fileParallelism: false,
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT } },
      { extends: true, test: { name: 'integration', include: ['test/**/*.test.ts'], exclude: UNIT } },
    ],
  },
});
