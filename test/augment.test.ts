// Random-shift augmentation (TrainerConfig.randomShift): each training image is the data row translated
// by an integer (dx, dy) ∈ [−k, k]² with the border replicated, drawn from (seed, sample index).
import { afterAll, describe, expect, it } from 'vitest';
import { DdpmError, Engine, MLPDenoiser, Trainer, UNet2DModel, namedSchedule } from '../src/index.js';

const S = 8;
const config = {
  sample_size: S,
  in_channels: 1,
  out_channels: 1,
  block_out_channels: [8],
  layers_per_block: 1,
  down_block_types: ['DownBlock2D'],
  up_block_types: ['UpBlock2D'],
  norm_num_groups: 4,
};
// every pixel distinct, so a translation is identified by the values it moved
const image = Float32Array.from({ length: S * S }, (_, i) => i / (S * S) - 0.5);
const schedule = namedSchedule('linear', 100);

/** Reference: in[clamp(y − dy), clamp(x − dx)]. */
function shifted(dx: number, dy: number): Float32Array {
  const c = (v: number) => Math.min(S - 1, Math.max(0, v));
  const out = new Float32Array(S * S);
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) out[y * S + x] = image[c(y - dy) * S + c(x - dx)];
  return out;
}

const engines: Engine[] = [];
afterAll(() => engines.forEach((e) => e.dispose()));

describe('Trainer randomShift', () => {
  it('feeds translations of the data row covering [−k, k]², border replicated', async () => {
    const engine = await Engine.create({ threads: 1 });
    engines.push(engine);
    const model = UNet2DModel.create(engine, config, 0);
    const B = 16;
    const trainer = new Trainer(model, image, schedule, { batchSize: B, randomShift: 2, seed: 3 });
    const seen = new Set<string>();
    for (let step = 0; step < 6; step++) {
      trainer.trainStep();
      // the batch x_0 the step trained on
      const x0 = engine.view((trainer as unknown as { x0: Parameters<Engine['view']>[0] }).x0);
      for (let n = 0; n < B; n++) {
        const row = x0.subarray(n * S * S, (n + 1) * S * S);
        let match: string | null = null;
        for (let dy = -2; dy <= 2 && !match; dy++)
          for (let dx = -2; dx <= 2 && !match; dx++)
            if (shifted(dx, dy).every((v, i) => v === row[i])) match = `${dx},${dy}`;
        expect(match, `step ${step} sample ${n} is no translation within ±2`).not.toBeNull();
        seen.add(match!);
      }
    }
    expect(seen.size).toBeGreaterThan(15); // 96 draws over 25 shifts
  });

  it('is off by default and deterministic in (seed, sample)', async () => {
    const engine = await Engine.create({ threads: 1 });
    engines.push(engine);
    const losses = (opts: object) => {
      const mark = engine.arena.mark();
      const t = new Trainer(UNet2DModel.create(engine, config, 0), image, schedule, { batchSize: 4, seed: 1, ...opts });
      const l = [0, 1, 2].map(() => t.trainStep().loss);
      engine.arena.release(mark);
      return l;
    };
    expect(losses({ randomShift: 0 })).toEqual(losses({}));
    expect(losses({ randomShift: 1 })).toEqual(losses({ randomShift: 1 }));
    expect(losses({ randomShift: 1 })).not.toEqual(losses({}));
  });

  it('rejects bad values and models without an image shape', async () => {
    const engine = await Engine.create({ threads: 1 });
    engines.push(engine);
    const unet = UNet2DModel.create(engine, config, 0);
    expect(() => new Trainer(unet, image, schedule, { randomShift: 1.5 })).toThrow(/randomShift/);
    expect(() => new Trainer(unet, image, schedule, { randomShift: S })).toThrow(/smaller than the image/);
    const mlp = MLPDenoiser.create(engine, { data_dim: 2, hidden_dim: 8, num_blocks: 1 }, 0);
    const err = (() => {
      try {
        new Trainer(mlp, new Float32Array(8), schedule, { randomShift: 1 });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(DdpmError);
    expect(String(err)).toMatch(/image model/);
  });
});
