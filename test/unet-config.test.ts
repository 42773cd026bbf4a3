import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseUNetConfig } from '../src/nn/unet-config.js';
import { unetParamSpecs } from '../src/nn/unet-params.js';

const fixture = join(__dirname, 'fixtures/diffusers');
const configJson = JSON.parse(readFileSync(join(fixture, 'unet_tiny.config.json'), 'utf8'));
const meta = JSON.parse(readFileSync(join(fixture, 'unet_tiny.json'), 'utf8'));

describe('UNet2DModel config and parameters', () => {
  it("declares exactly diffusers' state_dict: names, order and shapes", () => {
    const specs = unetParamSpecs(parseUNetConfig(configJson));
    expect(specs.map((s) => s.name)).toEqual(meta.state_dict.map((s: { name: string }) => s.name));
    expect(specs.map((s) => s.shape)).toEqual(meta.state_dict.map((s: { shape: number[] }) => s.shape));
    expect(specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0)).toBe(meta.param_count);
  });

  it('refuses unsupported keys and values by name, before any allocation', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ cross_attention_dim: 8 }, /unsupported UNet2DModel key "cross_attention_dim"/],
      [{ act_fn: 'gelu' }, /act_fn must be "silu", found "gelu"/],
      [{ norm_num_groups: 7 }, /norm_num_groups \(7\) must divide every block_out_channels entry, found 32/],
      [
        { down_block_types: ['DownBlock2D', 'CrossAttnDownBlock2D'] },
        /down_block_types\[1\] must be "DownBlock2D" or "AttnDownBlock2D", found "CrossAttnDownBlock2D"/,
      ],
      [{ up_block_types: ['UpBlock2D'] }, /up_block_types must be an array of 2 block types/],
      [{ time_embedding_type: 'fourier' }, /time_embedding_type must be "positional"/],
      [
        { class_embed_type: 'timestep' },
        /class_embed_type must be null \(the only value supported\), found "timestep"/,
      ],
      [{ attention_head_dim: 48 }, /attention_head_dim \(48\) must divide the attention width 64/],
      [{ layers_per_block: 0 }, /layers_per_block must be a positive integer \(at most 32\), found 0/],
      [{ _class_name: 'UNet2DConditionModel' }, /_class_name must be "UNet2DModel"/],
    ];
    for (const [patch, message] of cases) {
      expect(() => parseUNetConfig({ ...configJson, ...patch }, 'model/config.json')).toThrowError(message);
    }
  });

  it('fills diffusers defaults for absent keys', () => {
    const c = parseUNetConfig({
      block_out_channels: [32, 64],
      down_block_types: ['DownBlock2D', 'AttnDownBlock2D'],
      up_block_types: ['AttnUpBlock2D', 'UpBlock2D'],
      attention_head_dim: null,
    });
    expect(c.norm_num_groups).toBe(32);
    expect(c.flip_sin_to_cos).toBe(true);
    expect(c.layers_per_block).toBe(2);
  });
});
