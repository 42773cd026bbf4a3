// Backward passes of every UNet2DModel layer, checked by finite differences through a tiny whole U-Net
// that has every kind of layer: ResNet blocks with and without a shortcut conv, multi-head attention,
// asymmetric-padding downsampling, upsampling, skip concatenation, the time-embedding MLP, a class
// embedding and the mid block's output scale.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/index.js';
import { UNet2DModel } from '../src/nn/unet.js';
import { gradCheck } from './helpers/gradcheck.js';
import { randomF32 } from './helpers/rng.js';

const tinyConfig = {
  sample_size: 8,
  in_channels: 2,
  out_channels: 2,
  block_out_channels: [8, 16],
  layers_per_block: 1,
  down_block_types: ['DownBlock2D', 'AttnDownBlock2D'],
  up_block_types: ['AttnUpBlock2D', 'UpBlock2D'],
  norm_num_groups: 4,
  norm_eps: 1e-5,
  attention_head_dim: 8,
  flip_sin_to_cos: true,
  freq_shift: 0,
  downsample_padding: 0,
  mid_block_scale_factor: 2,
  num_class_embeds: 3,
};

let engine: Engine;
beforeAll(async () => {
  engine = await Engine.create({ threads: 1, simd: 'simd' });
});
afterAll(() => engine.dispose());

describe('UNet2DModel backward', () => {
  it('every parameter gradient matches central differences', () => {
    const model = UNet2DModel.create(engine, tinyConfig, 3);
    // move norms off their trivial initial values so their gradients are exercised in general position
    for (const { name } of model.params.specs) {
      if (/norm.*\.(weight|bias)$/.test(name)) {
        const v = engine.view(model.params.get(name));
        const r = randomF32(v.length, v.length + name.length);
        v.forEach((x, i) => (v[i] = x + 0.3 * r[i]));
      }
    }
    const x = randomF32(2 * model.sampleSize, 5);
    const rows = gradCheck(engine, model, x, [3, 870], { classLabels: [2, 0] });
    expect(rows.length).toBe(model.params.specs.length);
    const bad = rows.filter((r) => !(Math.abs(r.analytic - r.numeric) <= 2e-2 * Math.abs(r.numeric) + 2e-3));
    expect(bad).toEqual([]);
    // the check can fail: a wrong gradient (sign flipped) is caught
    expect(rows.some((r) => Math.abs(-r.analytic - r.numeric) > 2e-2 * Math.abs(r.numeric) + 2e-3)).toBe(true);
  });
});
