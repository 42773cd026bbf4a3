// Whole-model figures for ddpm-wasm (no peer): a U-Net forward pass (latency per call, batch 1 and 8) and
// a training step (forward, backward, AdamW, EMA; batch 32), for the small U-Net of the shipped MNIST model
// (28×28×1) and for the unet_tiny fixture's config (16×16×3, diffusers' google/ddpm-cifar10-32 style).
//   node bench/models.mjs --threads N [--build simd|relaxed] [--only unet_forward|train_step] [--quick]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine, Trainer, UNet2DModel, namedSchedule } from '../dist/index.js';
import { UNET_PRESETS } from '../dist/nn/presets.js';
import { childSetup, measure, parseArgs, randomF32 } from './common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const emit = childSetup();
const opts = parseArgs(process.argv.slice(2));
const threads = opts.threads ?? 1;
const build = opts.build ?? 'relaxed';
const engine = await Engine.create({ threads, simd: build });

const MODELS = [
  { name: 'mnist 28x28x1', config: { sample_size: 28, in_channels: 1, out_channels: 1, ...UNET_PRESETS.mnist } },
  {
    name: 'unet_tiny 16x16x3',
    config: JSON.parse(readFileSync(path.join(here, '../test/fixtures/diffusers/unet_tiny.config.json'), 'utf8')),
  },
];

for (const m of MODELS) {
  const unet = UNet2DModel.create(engine, m.config, 0);
  const D = unet.sampleSize;
  if (opts.only === null || opts.only === 'unet_forward') {
    for (const N of [1, 8]) {
      const mark = engine.arena.mark();
      const x = engine.upload(randomF32(N * D, 7), [N, D], 'x');
      const r = await measure(`unet_forward ${m.name} N${N}`, () => void unet.forwardTensor(x, 500), opts);
      emit({
        op: 'unet_forward',
        shape: `${m.name} N${N}`,
        threads,
        build,
        impl: 'ddpm-wasm',
        gflops: null,
        us: r.seconds * 1e6,
        imagesPerSecond: N / r.seconds,
        cpuPerWall: r.cpuPerWall,
        otherLoad: r.otherLoad,
      });
      engine.arena.release(mark);
    }
  }
  if (opts.only === null || opts.only === 'train_step') {
    const B = 32;
    const trainer = new Trainer(unet, randomF32(4 * B * D, 8), namedSchedule('linear', 1000).alphasCumprod, {
      batchSize: B,
      learningRate: 1e-4,
      seed: 1,
    });
    const r = await measure(`train_step ${m.name} B${B}`, () => void trainer.trainStep(), { ...opts, quick: true });
    emit({
      op: 'train_step',
      shape: `${m.name} B${B}`,
      threads,
      build,
      impl: 'ddpm-wasm',
      gflops: null,
      us: r.seconds * 1e6,
      imagesPerSecond: B / r.seconds,
      cpuPerWall: r.cpuPerWall,
      otherLoad: r.otherLoad,
    });
  }
}
engine.dispose();
process.exit(0);
