// UNet2DModel against the real diffusers library: every block's output and the final ε, for per-sample
// timesteps and for a scalar timestep (fixtures: test/fixtures/diffusers/README.md).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/index.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { UNet2DModel } from '../src/nn/unet.js';

const dir = join(__dirname, 'fixtures/diffusers');
const meta = JSON.parse(readFileSync(join(dir, 'unet_tiny.json'), 'utf8'));
const tensor = (j: { data: (number | string)[] }) => Float32Array.from(j.data, (v) => Math.fround(Number(v)));
const intermediates = readSafetensors(
  readFileSync(join(dir, 'unet_tiny_intermediates.safetensors')),
  'unet_tiny_intermediates.safetensors',
).tensors;

/** ‖a − b‖₂ / ‖b‖₂ in float64. */
function relL2(a: Float32Array, b: Float32Array): number {
  let num = 0,
    den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

describe('UNet2DModel parity with diffusers', () => {
  let engine: Engine;
  let model: UNet2DModel;
  beforeAll(async () => {
    engine = await Engine.create({ threads: 2 });
    model = UNet2DModel.fromFiles(
      engine,
      readFileSync(join(dir, 'unet_tiny.config.json'), 'utf8'),
      readFileSync(join(dir, 'unet_tiny.safetensors')),
    );
  });
  afterAll(() => engine.dispose());

  it('matches every intermediate activation and the output (per-sample timesteps)', async () => {
    const seen: string[] = [];
    const errors: string[] = [];
    let worst = { name: '', err: 0 };
    const out = await model.forward(tensor(meta.input), meta.timesteps, {
      hook: (name, values, shape) => {
        const want = intermediates.get(name);
        if (!want) return;
        seen.push(name);
        expect(shape).toEqual(want.shape);
        const err = relL2(values, want.data);
        if (err > worst.err) worst = { name, err };
        if (!(err < 1e-4)) errors.push(`${name}: relative L2 error ${err.toExponential(2)}`);
      },
    });
    console.log(`unet_tiny parity: worst block ${worst.name}, relative L2 error ${worst.err.toExponential(2)}`);
    expect(errors).toEqual([]);
    expect(seen.sort()).toEqual([...intermediates.keys()].sort());
    expect(relL2(out, tensor(meta.output))).toBeLessThan(1e-4);
  });

  it('matches the output for a scalar timestep broadcast to the batch', async () => {
    const x = meta.extra_scalar_timestep;
    const out = await model.forward(tensor(meta.input), x.t, {});
    expect(relL2(out, tensor(x.output))).toBeLessThan(1e-4);
  });
});

describe('UNet2DModel weights in and out', () => {
  let engine: Engine;
  const configText = readFileSync(join(dir, 'unet_tiny.config.json'), 'utf8');
  const weights = readFileSync(join(dir, 'unet_tiny.safetensors'));
  beforeAll(async () => {
    engine = await Engine.create({ threads: 1 });
  });
  afterAll(() => engine.dispose());

  it('saves what it loaded bit for bit, and accepts the legacy attention names', async () => {
    const a = UNet2DModel.fromFiles(engine, configText, weights);
    const saved = a.weightsBytes();
    const original = readSafetensors(weights).tensors;
    const back = readSafetensors(saved).tensors;
    expect([...back.keys()].sort()).toEqual([...original.keys()].sort());
    for (const [name, t] of original) expect(back.get(name)!.data).toEqual(t.data);
    // rename to the pre-0.14 names (query/key/value/proj_attn) and load again
    const { writeSafetensors } = await import('../src/io/safetensors.js');
    const legacy = [...original].map(
      ([name, t]) =>
        [
          name
            .replace('.to_q.', '.query.')
            .replace('.to_k.', '.key.')
            .replace('.to_v.', '.value.')
            .replace('.to_out.0.', '.proj_attn.'),
          t,
        ] as [string, typeof t],
    );
    const b = UNet2DModel.fromFiles(engine, configText, writeSafetensors(legacy));
    const x = tensor(meta.input);
    expect(await b.forward(x, meta.timesteps)).toEqual(await a.forward(x, meta.timesteps));
  });

  it('lists missing, unexpected and wrong-shaped tensors together in one error', async () => {
    const { writeSafetensors } = await import('../src/io/safetensors.js');
    const tensors = [...readSafetensors(weights).tensors].filter(
      ([n]) => n !== 'conv_in.bias' && n !== 'conv_out.bias',
    );
    tensors.push(['extra.weight', { dtype: 'F32', shape: [1], data: new Float32Array(1) }]);
    const i = tensors.findIndex(([n]) => n === 'conv_in.weight');
    tensors[i] = ['conv_in.weight', { dtype: 'F32', shape: [32, 3, 1, 1], data: new Float32Array(96) }];
    expect(() => UNet2DModel.fromFiles(engine, configText, writeSafetensors(tensors))).toThrowError(
      /the tensors do not fit this UNet2DModel config — missing 2: conv_in\.bias, conv_out\.bias; unexpected 1: extra\.weight; wrong shape 1: conv_in\.weight \(expected \[32,3,3,3\], found \[32,3,1,1\]\)/,
    );
  });

  it('checks its inputs before running', async () => {
    const m = UNet2DModel.fromFiles(engine, configText, weights);
    await expect(m.forward(new Float32Array(100), 3)).rejects.toThrow(
      /sample has 100 values, expected N × 3 × 16 × 16/,
    );
    await expect(m.forward(new Float32Array(768), [1, 2])).rejects.toThrow(/2 timesteps for a batch of 1/);
    await expect(m.forward(new Float32Array(768).fill(NaN), 1)).rejects.toThrow(/sample\[0\] = NaN is not finite/);
  });
});

describe('UNet2DModel.save', () => {
  it('writes a diffusers folder that loads back to the same outputs, and refuses non-finite weights', async () => {
    const { mkdtempSync, readdirSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const engine = await Engine.create({ threads: 1 });
    const a = UNet2DModel.fromFiles(
      engine,
      readFileSync(join(dir, 'unet_tiny.config.json'), 'utf8'),
      readFileSync(join(dir, 'unet_tiny.safetensors')),
    );
    const out = mkdtempSync(join(tmpdir(), 'unet-'));
    await a.save(out);
    expect(readdirSync(out).sort()).toEqual(['config.json', 'diffusion_pytorch_model.safetensors']);
    const saved = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    const original = JSON.parse(readFileSync(join(dir, 'unet_tiny.config.json'), 'utf8'));
    for (const [k, v] of Object.entries(original)) if (!k.startsWith('_')) expect(saved[k]).toEqual(v);
    const b = await UNet2DModel.fromPretrained(engine, out);
    const x = tensor(meta.input);
    expect(await b.forward(x, meta.timesteps)).toEqual(await a.forward(x, meta.timesteps));
    engine.view(b.params.get('mid_block.attentions.0.to_v.bias'))[3] = NaN;
    await expect(b.save(out)).rejects.toThrow(
      /parameter mid_block\.attentions\.0\.to_v\.bias holds NaN; non-finite weights are never saved/,
    );
    await expect(UNet2DModel.fromPretrained(engine, join(out, 'nope'))).rejects.toThrow(
      /nope: not a model folder \(no config\.json/,
    );
    engine.dispose();
  });
});
