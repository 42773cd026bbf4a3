// MLPDenoiser: every parameter gradient by central differences, inference = training forward, weights
// round trip through safetensors, config validation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/index.js';
import { MLPDenoiser, parseMLPConfig } from '../src/nn/mlp.js';
import { gradCheck } from './helpers/gradcheck.js';
import { randomF32, sameBits } from './helpers/rng.js';
import { describeError } from './helpers/errors.js';

const config = { data_dim: 3, hidden_dim: 16, num_blocks: 2, time_proj_dim: 8 };

let engine: Engine;
beforeAll(async () => {
  engine = await Engine.create({ threads: 1, simd: 'simd' });
});
afterAll(() => engine.dispose());

describe('MLPDenoiser', () => {
  it('every parameter gradient matches central differences', () => {
    const model = MLPDenoiser.create(engine, config, 11);
    const x = randomF32(5 * 3, 4);
    const rows = gradCheck(engine, model, x, [0, 17, 250, 999, 3]);
    expect(rows.length).toBe(model.params.specs.length);
    const ok = (a: number, n: number) => Math.abs(a - n) <= 1e-2 * Math.abs(n) + 1e-3;
    expect(rows.filter((r) => !ok(r.analytic, r.numeric))).toEqual([]);
    // the check can fail: flipped gradients are caught
    expect(rows.some((r) => !ok(-r.analytic, r.numeric))).toBe(true);
  });

  it('inference forward equals the training forward; weights round trip bit-exactly', async () => {
    const model = MLPDenoiser.create(engine, config, 2);
    const x = randomF32(4 * 3, 9);
    const ts = [5, 100, 0, 42];
    const y = await model.forward(x, ts);
    const mark = engine.arena.mark();
    const { out } = model.trainForward(engine.upload(x, [4, 3], 'x'), ts);
    expect(sameBits(engine.read(out), y)).toBe(true);
    engine.arena.release(mark);
    const copy = MLPDenoiser.fromFiles(engine, model.configJson(), model.weightsBytes());
    expect(copy.config).toEqual(model.config);
    expect(sameBits(await copy.forward(x, ts), y)).toBe(true);
    // one timestep for all samples equals that timestep repeated
    expect(sameBits(await model.forward(x, 7), await model.forward(x, [7, 7, 7, 7]))).toBe(true);
  });

  it('rejects bad configs, inputs and weights with typed errors naming the problem', async () => {
    const code = describeError;
    expect(code(() => parseMLPConfig({ hidden_dim: 0 }))).toMatch(/^FORMAT: .*hidden_dim/);
    expect(code(() => parseMLPConfig({ time_proj_dim: 7 }))).toMatch(/^FORMAT: .*even/);
    expect(code(() => parseMLPConfig({ hiden_dim: 8 }))).toMatch(/^FORMAT: .*hiden_dim/);
    expect(code(() => parseMLPConfig({ format_version: 2 }))).toMatch(/^FORMAT: .*format_version 2/);
    const model = MLPDenoiser.create(engine, config, 1);
    await expect(model.forward(new Float32Array(4), 1)).rejects.toMatchObject({ code: 'SHAPE_MISMATCH' });
    await expect(model.forward(new Float32Array([0, NaN, 0]), 1)).rejects.toMatchObject({ code: 'NON_FINITE' });
    const other = MLPDenoiser.create(engine, { ...config, hidden_dim: 8 }, 1);
    expect(
      code(() =>
        MLPDenoiser.fromFiles(engine, model.configJson(), other.weightsBytes(), {
          config: 'c.json',
          weights: 'w.safetensors',
        }),
      ),
    ).toMatch(/^FORMAT: w\.safetensors: .*wrong shape/);
  });
});
