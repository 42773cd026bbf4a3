// UNet2DModel.forwardTensor's inference replays (src/nn/unet.ts): the first call records its kernel calls
// and memory writes, later calls with the same addresses run them again without the layers' JavaScript.
// A replay must give exactly what the full forward pass gives — for new timesteps and class labels, after
// the weights changed in place, for any thread count — and a change of addresses must record anew.
import { describe, expect, it, vi } from 'vitest';
import { UNet2DModel } from '../src/nn/unet.js';
import { UNET_PRESETS } from '../src/nn/presets.js';
import { setWinogradPolicy } from '../src/kernels/winograd.js';
import { useEngines } from './helpers/engines.js';
import { TINY_UNET } from './helpers/configs.js';
import { randomF32, sameBits } from './helpers/rng.js';

const make = useEngines();
const N = 3;
const D = 64; // 1 × 8 × 8

const CASES = [
  { name: 'unconditional', config: TINY_UNET, labels: false },
  { name: 'centered input', config: { ...TINY_UNET, center_input_sample: true }, labels: false },
  { name: 'class-conditional', config: { ...TINY_UNET, num_class_embeds: 4 }, labels: true },
] as const;

describe('UNet2DModel.forwardTensor replays', () => {
  for (const threads of [1, 2, 3]) {
    for (const c of CASES) {
      it(`${c.name}, ${threads} thread(s): replayed calls give the full forward pass's bits`, async () => {
        const e = await make({ threads, simd: 'relaxed' });
        const unet = UNet2DModel.create(e, c.config, 5);
        const sample = randomF32(N * D, 11);
        const x = e.upload(sample, [N, 1, 8, 8], 'x');
        const calls: { ts: number[]; labels?: number[] }[] = [
          { ts: [999, 500, 1], labels: [0, 1, 2] },
          { ts: [3, 250, 750], labels: [3, 3, 0] }, // replayed: new timesteps, new labels
          { ts: [3, 250, 750], labels: [3, 3, 0] },
        ];
        const get = vi.spyOn(unet.params, 'get');
        for (let i = 0; i < calls.length; i++) {
          const { ts, labels } = calls[i];
          const classLabels = c.labels ? labels : undefined;
          if (i === 2) {
            // the weights change in place (as training or loading does): a replay reads them anew
            const w = unet.params.get('conv_in.weight');
            const v = e.view(w);
            for (let k = 0; k < v.length; k++) v[k] *= -1.5;
          }
          get.mockClear();
          const got = e.read(unet.forwardTensor(x, ts, { classLabels }));
          // a replay looks up no parameter (the layers do, by name)
          if (i > 0 && i !== 2) expect(get).not.toHaveBeenCalled();
          const want = await unet.forward(sample, ts, { classLabels });
          expect(sameBits(got, want), `call ${i}`).toBe(true);
        }
        get.mockRestore();
      });
    }
  }

  for (const n of [5, 6]) {
    it(`mnist preset (28×28, 7×7 panels that straddle images), N = ${n}: 2 and 3 threads give the 1-thread bits`, async () => {
      const config = { sample_size: 28, in_channels: 1, out_channels: 1, ...UNET_PRESETS.mnist };
      const sample = randomF32(n * 784, 3);
      const ts = Array.from({ length: n }, (_, i) => 999 - 200 * i);
      const e1 = await make({ threads: 1, simd: 'relaxed' });
      const want = await UNet2DModel.create(e1, config, 2).forward(sample, ts);
      // N = 5: every call split over the threads; N = 6: the batch split in 3 + 3 or 2 + 2 + 2
      for (const threads of [2, 3]) {
        const e = await make({ threads, simd: 'relaxed' });
        const unet = UNet2DModel.create(e, config, 2);
        const x = e.upload(sample, [n, 1, 28, 28], 'x');
        for (let call = 0; call < 2; call++) {
          expect(sameBits(e.read(unet.forwardTensor(x, ts)), want), `${threads} threads, call ${call}`).toBe(true);
        }
      }
    });
  }

  it('records anew when an address changes (another x, another out, another arena top)', async () => {
    const e = await make({ threads: 2, simd: 'relaxed' });
    const unet = UNet2DModel.create(e, TINY_UNET, 7);
    const a = randomF32(N * D, 1);
    const b = randomF32(N * D, 2);
    const xa = e.upload(a, [N, 1, 8, 8], 'xa');
    const xb = e.upload(b, [N, 1, 8, 8], 'xb');
    const out = e.alloc(N * D, 'out');
    const ts = [10, 20, 30];
    const wantA = await unet.forward(a, ts);
    const wantB = await unet.forward(b, ts);
    for (let round = 0; round < 2; round++) {
      expect(sameBits(e.read(unet.forwardTensor(xa, ts)), wantA)).toBe(true);
      expect(sameBits(e.read(unet.forwardTensor(xb, ts)), wantB)).toBe(true);
      unet.forwardTensor(xa, ts, { out });
      expect(sameBits(e.read(out), wantA)).toBe(true);
      e.alloc(100, 'moves the arena top'); // the next round's activations start elsewhere
    }
  });

  it("leaves someone else's recorder alone (and then runs every layer, recording nothing of its own)", async () => {
    const e = await make({ threads: 2, simd: 'relaxed' });
    const unet = UNet2DModel.create(e, TINY_UNET, 3);
    const sample = randomF32(N * D, 8);
    const x = e.upload(sample, [N, 1, 8, 8], 'x');
    const seen: number[] = [];
    const recorder = { push: (c: { op: number }) => seen.push(c.op) };
    e.recorder = recorder;
    try {
      const want = await unet.forward(sample, [4, 5, 6]);
      for (let call = 0; call < 2; call++) {
        seen.length = 0;
        expect(sameBits(e.read(unet.forwardTensor(x, [4, 5, 6])), want)).toBe(true);
        expect(e.recorder).toBe(recorder);
        expect(seen.length).toBeGreaterThan(50); // every kernel call of the pass, both times
      }
    } finally {
      e.recorder = null;
    }
  });

  it('Winograd temporaries (released by each conv) never overlap another chunk or the programs: 2, 3 threads', async () => {
    const n = 6;
    const sample = randomF32(n * D, 12);
    const ts = [5, 50, 500, 900, 1, 77];
    try {
      setWinogradPolicy('always'); // every 3×3 conv allocates and releases its transform buffers
      const e1 = await make({ threads: 1, simd: 'relaxed' });
      const want = await UNet2DModel.create(e1, TINY_UNET, 4).forward(sample, ts);
      for (const threads of [2, 3]) {
        const e = await make({ threads, simd: 'relaxed' });
        const unet = UNet2DModel.create(e, TINY_UNET, 4);
        const x = e.upload(sample, [n, 1, 8, 8], 'x');
        for (let call = 0; call < 3; call++) {
          expect(sameBits(e.read(unet.forwardTensor(x, ts)), want), `${threads} threads, call ${call}`).toBe(true);
        }
      }
    } finally {
      setWinogradPolicy('measured');
    }
  });

  it('follows a change of the Winograd policy', async () => {
    const e = await make({ threads: 1, simd: 'relaxed' });
    const unet = UNet2DModel.create(e, TINY_UNET, 9);
    const sample = randomF32(N * D, 4);
    const x = e.upload(sample, [N, 1, 8, 8], 'x');
    const ts = [1, 2, 3];
    try {
      for (const p of ['never', 'always', 'never', 'always'] as const) {
        setWinogradPolicy(p);
        const want = await unet.forward(sample, ts);
        expect(sameBits(e.read(unet.forwardTensor(x, ts)), want), p).toBe(true);
      }
    } finally {
      setWinogradPolicy('measured');
    }
  });
});
