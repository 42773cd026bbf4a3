// Training a UNet2DModel with the generic trainer: a class-conditional U-Net with dropout overfits a few
// images, identically on 1 and 2 threads, and survives a checkpoint round trip.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Engine,
  Trainer,
  UNet2DModel,
  loadCheckpoint,
  modelFromCheckpoint,
  namedSchedule,
  saveCheckpoint,
} from '../src/index.js';
import { TINY_UNET } from './helpers/configs.js';
import { randomF32, sameBits } from './helpers/rng.js';

const config = { ...TINY_UNET, attention_head_dim: 8, dropout: 0.1, num_class_embeds: 3 };
const images = randomF32(6 * 64, 21); // 6 images of 1×8×8 in [−1, 1)
const labels = [0, 1, 2, 0, 1, 2];
const schedule = namedSchedule('linear', 100);
const options = {
  batchSize: 4,
  learningRate: 3e-3,
  seed: 5,
  labelDropout: 0.2,
  uncondLabel: 2,
  ema: { maxDecay: 0.99 },
};

const engines: Engine[] = [];
afterAll(() => engines.forEach((e) => e.dispose()));
async function run(threads: number, steps: number) {
  const engine = await Engine.create({ threads, simd: 'simd' });
  engines.push(engine);
  const model = UNet2DModel.create(engine, config, 1);
  const trainer = new Trainer(model, { samples: images, labels }, schedule.alphasCumprod, options);
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) losses.push(trainer.trainStep().loss);
  return { engine, model, trainer, losses };
}

describe('UNet2DModel training', () => {
  let one: Awaited<ReturnType<typeof run>>;
  beforeAll(async () => {
    one = await run(1, 60);
  });

  it('overfits a few labelled images: the loss falls', () => {
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    expect(one.losses.every(Number.isFinite)).toBe(true);
    expect(mean(one.losses.slice(-15))).toBeLessThan(0.8 * mean(one.losses.slice(0, 15)));
  });

  it('gives bit-identical weights on 2 threads (dropout masks and label dropout included)', async () => {
    const two = await run(2, 60);
    expect(two.losses).toEqual(one.losses);
    expect(sameBits(two.engine.read(two.model.params.all), one.engine.read(one.model.params.all))).toBe(true);
  });

  it('checkpoints and restores a UNet2DModel', async () => {
    const root = mkdtempSync(join(tmpdir(), 'unet-ckpt-'));
    await saveCheckpoint(root, one.trainer);
    const ckpt = await loadCheckpoint(root);
    const restored = modelFromCheckpoint(one.engine, ckpt);
    expect(restored).toBeInstanceOf(UNet2DModel);
    expect(sameBits(one.engine.read(restored.params.all), one.engine.read(one.model.params.all))).toBe(true);
  });
});
