// The Winograd hook in the U-Net forward (src/nn/layers.ts conv): diffusers parity with every eligible conv
// (3×3, stride 1, padding 1) forced onto F(4×4, 3×3), and the measured rule's bit-identity across threads.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '../src/io/safetensors.js';
import { setWinogradPolicy } from '../src/kernels/winograd.js';
import { UNet2DModel } from '../src/nn/unet.js';
import { unetForwardBytes } from '../src/nn/unet-plan.js';
import { useEngines } from './helpers/engines.js';
import { randomF32, sameBits } from './helpers/rng.js';

const make = useEngines();
const dir = join(__dirname, 'fixtures/diffusers');
const meta = JSON.parse(readFileSync(join(dir, 'unet_tiny.json'), 'utf8'));
const tensor = (j: { data: (number | string)[] }) => Float32Array.from(j.data, (v) => Math.fround(Number(v)));
const intermediates = readSafetensors(
  readFileSync(join(dir, 'unet_tiny_intermediates.safetensors')),
  'unet_tiny_intermediates.safetensors',
).tensors;
const load = (e: Parameters<typeof UNet2DModel.fromFiles>[0]) =>
  UNet2DModel.fromFiles(
    e,
    readFileSync(join(dir, 'unet_tiny.config.json'), 'utf8'),
    readFileSync(join(dir, 'unet_tiny.safetensors')),
  );

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

describe('Winograd in the U-Net forward', () => {
  afterAll(() => void setWinogradPolicy('measured'));

  for (const simd of ['simd', 'relaxed'] as const) {
    it(`${simd}: every eligible conv on F(4×4,3×3) still matches diffusers (every block, relative L2 < 1e-4)`, async () => {
      const e = await make({ threads: 2, simd });
      const model = load(e);
      const worst = { always: 0, never: 0 };
      for (const p of ['always', 'never'] as const) {
        setWinogradPolicy(p);
        const errors: string[] = [];
        const out = await model.forward(tensor(meta.input), meta.timesteps, {
          hook: (name, values) => {
            const want = intermediates.get(name);
            if (!want) return;
            const err = relL2(values, want.data);
            worst[p] = Math.max(worst[p], err);
            if (!(err < 1e-4)) errors.push(`${name}: relative L2 error ${err.toExponential(2)}`);
          },
        });
        expect(errors, p).toEqual([]);
        expect(relL2(out, tensor(meta.output)), p).toBeLessThan(1e-4);
      }
      console.log(
        `unet_tiny parity (${simd}): worst block relative L2 ${worst.always.toExponential(2)} with Winograd everywhere, ${worst.never.toExponential(2)} direct`,
      );
    });
  }

  it('the measured rule gives the same bits for 1, 2 and 3 threads, and image i does not depend on the batch', async () => {
    setWinogradPolicy('measured');
    const x = randomF32(4 * 3 * 16 * 16, 9);
    const outs = [];
    for (const threads of [1, 2, 3]) outs.push(await load(await make({ threads, simd: 'relaxed' })).forward(x, 17));
    expect(sameBits(outs[1], outs[0])).toBe(true);
    expect(sameBits(outs[2], outs[0])).toBe(true);
    const one = await load(await make({ threads: 2, simd: 'relaxed' })).forward(x.subarray(3 * 768), 17);
    expect(sameBits(one, outs[0].subarray(3 * 768))).toBe(true);
    // and it did fire: the result differs from the direct conv's in the last bits
    setWinogradPolicy('never');
    const direct = await load(await make({ threads: 1, simd: 'relaxed' })).forward(x, 17);
    expect(sameBits(direct, outs[0])).toBe(false);
    expect(relL2(outs[0], direct)).toBeLessThan(1e-5);
  });

  it("the forward's memory plan covers the Winograd buffers", async () => {
    const e = await make({ threads: 1 });
    // wide and small: the per-call filter transform (∝ Cout·Cin) outweighs the activations (∝ N·C·H·W)
    const m = UNet2DModel.create(e, {
      sample_size: 16,
      in_channels: 1,
      out_channels: 1,
      block_out_channels: [128, 128],
      layers_per_block: 1,
      norm_num_groups: 8,
      down_block_types: ['DownBlock2D', 'DownBlock2D'],
      up_block_types: ['UpBlock2D', 'UpBlock2D'],
    });
    for (const p of ['measured', 'always'] as const) {
      setWinogradPolicy(p);
      for (const N of [1, 3]) {
        const x = e.alloc([N, m.sampleSize], 'x');
        m.forwardTensor(x, 10); // first call: allocates unet.out
        const start = e.arena.used;
        let peak = start;
        const alloc = e.arena.alloc.bind(e.arena);
        e.arena.alloc = (shape, name) => {
          const t = alloc(shape, name);
          peak = Math.max(peak, e.arena.used);
          return t;
        };
        m.forwardTensor(x, 10);
        e.arena.alloc = alloc;
        expect(unetForwardBytes(m.config, N), `${p} N=${N}`).toBeGreaterThanOrEqual(peak - start);
      }
    }
  });

  it("the forward's memory plan follows a change of policy (it is not cached across policies)", async () => {
    const e = await make({ threads: 1 });
    // wide and small, as above: with Winograd the plan is much larger (the per-call filter transform)
    const m = UNet2DModel.create(e, {
      sample_size: 16,
      in_channels: 1,
      out_channels: 1,
      block_out_channels: [128, 128],
      layers_per_block: 1,
      norm_num_groups: 8,
      down_block_types: ['DownBlock2D', 'DownBlock2D'],
      up_block_types: ['UpBlock2D', 'UpBlock2D'],
    });
    setWinogradPolicy('never');
    const direct = unetForwardBytes(m.config, 1);
    setWinogradPolicy('always');
    const winograd = unetForwardBytes(m.config, 1);
    expect(winograd).toBeGreaterThan(direct + 2 ** 20);
    const x = e.alloc([1, m.sampleSize], 'x');
    setWinogradPolicy('never');
    m.forwardTensor(x, 10); // allocates unet.out, plans (and caches) the direct forward's bytes
    const start = e.arena.used;
    // a limit between the two plans: the direct forward fits, the Winograd one does not
    Object.defineProperty(e.arena, 'limitBytes', { value: start + (direct + winograd) / 2 });
    m.forwardTensor(x, 10);
    setWinogradPolicy('always');
    let err: unknown;
    try {
      m.forwardTensor(x, 10);
    } catch (caught) {
      err = caught;
    }
    setWinogradPolicy('measured');
    // refused by the plan before anything ran, not by an allocation halfway through
    expect(err).toMatchObject({
      code: 'OUT_OF_MEMORY',
      message: expect.stringMatching(/^UNet2DModel\.forwardTensor on a batch of 1 /),
    });
    expect(e.arena.used).toBe(start);
  });
});
