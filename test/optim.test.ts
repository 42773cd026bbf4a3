import { describe, expect, it } from 'vitest';
import { DdpmError, kernels } from '../src/index.js';
import * as ref from './reference/optim.js';
import { engineMatrix, f64, maxScaledErr, onAllEngines, SIMD_LEVELS } from './helpers/kernel-test.js';
import { maxRelErr, randomF32, sameBits } from './helpers/rng.js';

const engines = engineMatrix();

describe('adamw', () => {
  const cases: [string, ref.AdamwHyper][] = [
    ['torch defaults, weight decay 0.01', { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 }],
    [
      'large lr and decay, beta1 < 0.5 (the other lerp branch)',
      { lr: 0.1, beta1: 0.3, beta2: 0.9, eps: 1e-6, weightDecay: 0.5 },
    ],
    ['no weight decay, large eps', { lr: 0.05, beta1: 0.95, beta2: 0.99, eps: 0.1, weightDecay: 0 }],
  ];
  const STEPS = 6;

  for (const [name, h] of cases) {
    it(`matches a float64 transcription of torch.optim.AdamW over ${STEPS} steps: ${name}`, () => {
      for (const n of [1, 17, 63, 1037]) {
        const p0 = randomF32(n, 1);
        const grads = Array.from({ length: STEPS }, (_, t) =>
          randomF32(n, 10 + t).map((g, i) => (i % 7 === 3 ? 0 : g * 2 ** ((i % 5) - 2))),
        );
        const out = onAllEngines(engines, `adamw ${name} n=${n}`, (e) => {
          const params = e.upload(p0, n, 'params');
          const m = e.upload(new Float32Array(n), n, 'm');
          const v = e.upload(new Float32Array(n), n, 'v');
          const g = e.alloc(n, 'grads');
          for (let t = 1; t <= STEPS; t++) {
            e.write(g, grads[t - 1]);
            kernels.adamw(e, { params, grads: g, m, v, n, step: t, ...h });
          }
          return [e.read(params), e.read(m), e.read(v)];
        });
        const [p, m, v] = [f64(p0), new Float64Array(n), new Float64Array(n)];
        for (let t = 1; t <= STEPS; t++) ref.adamwStep(p, grads[t - 1], m, v, t, h);
        // m of alternating gradients cancels: its error is relative to the same average of |g|
        const [pAbs, mAbs, vAbs] = [f64(p0), new Float64Array(n), new Float64Array(n)];
        for (let t = 1; t <= STEPS; t++) ref.adamwStep(pAbs, grads[t - 1].map(Math.abs), mAbs, vAbs, t, h);
        // each step rounds p (about |p|·2⁻²⁴ per operation) and adds an update of at most a few lr
        const pMag = Array.from(p, (x) => STEPS * (Math.abs(x) + 10 * h.lr));
        for (const simd of SIMD_LEVELS) {
          const [gp, gm, gv] = out[simd];
          const where = `${simd} n=${n}`;
          expect(maxScaledErr(gp, p, pMag), `params ${where}`).toBeLessThan(2 ** -22);
          expect(maxScaledErr(gm, m, mAbs, 1e-30), `m ${where}`).toBeLessThan(2e-7);
          expect(maxRelErr(gv, v, 1e-30), `v ${where}`).toBeLessThan(1e-6);
        }
      }
    });
  }

  it('rejects bad hyperparameters, sizes and aliasing before any kernel runs', () => {
    const e = engines[engines.length - 1].engine;
    const t = (name: string) => e.upload(new Float32Array(16).fill(7), 16, name);
    const base = {
      params: t('params'),
      grads: t('grads'),
      m: t('m'),
      v: t('v'),
      n: 16,
      step: 1,
      lr: 1e-3,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: 0,
    };
    const bad: [Partial<typeof base>, string, RegExp][] = [
      [{ step: 0 }, 'INVALID_ARGUMENT', /adamw: step must be an integer >= 1, found 0/],
      [{ beta1: 1 }, 'INVALID_ARGUMENT', /adamw: beta1 must be in \[0, 1\), found 1/],
      [{ beta2: -0.1 }, 'INVALID_ARGUMENT', /adamw: beta2 must be in \[0, 1\), found -0.1/],
      [{ lr: NaN }, 'INVALID_ARGUMENT', /adamw: lr must be a finite number, found NaN/],
      [{ eps: -1 }, 'INVALID_ARGUMENT', /adamw: eps must be in \[0, Infinity\], found -1/],
      [{ n: 17 }, 'SHAPE_MISMATCH', /adamw: params \(n\) \(tensor params\) must hold at least 17 values, found 16/],
      [{ v: base.m }, 'INVALID_ARGUMENT', /adamw: m \(tensor m\) overlaps v \(tensor m\)/],
      [{ grads: { ...base.grads, ptr: 1 << 30 } }, 'OUT_OF_BOUNDS', /adamw: grads \(n\) \(tensor grads/],
    ];
    for (const [change, code, pattern] of bad) {
      try {
        kernels.adamw(e, { ...base, ...change });
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(DdpmError);
        expect((err as DdpmError).code).toBe(code);
        expect((err as Error).message).toMatch(pattern);
      }
    }
    for (const x of [base.params, base.m, base.v]) expect(e.read(x).every((v) => v === 7)).toBe(true);
  });
});

describe('gradNorm', () => {
  it('matches float64 and is the same number for every thread count', () => {
    for (const n of [0, 1, 17, 4096, 4097, 5 * 4096 + 3, 100_003]) {
      const g = randomF32(n, n + 1).map((v, i) => v * 2 ** ((i % 9) - 4));
      const want = ref.l2norm(g);
      for (const simd of SIMD_LEVELS) {
        const got = engines
          .filter((x) => x.simd === simd)
          .map(({ engine: e }) => {
            const mark = e.arena.mark();
            const norm = kernels.gradNorm(e, e.upload(g, n, 'grads'), n);
            e.arena.release(mark);
            return norm;
          });
        expect(new Set(got).size, `${simd} n=${n}: ${got}`).toBe(1);
        expect(Math.abs(got[0] - want), `${simd} n=${n}`).toBeLessThanOrEqual(1e-6 * want);
      }
    }
  });

  it('reports a non-finite gradient as a non-finite norm, and checks its arguments', () => {
    const e = engines[0].engine;
    const g = e.upload(Float32Array.from([1, 2, Infinity, 3]), 4, 'grads');
    expect(kernels.gradNorm(e, g, 4)).toBe(Infinity);
    e.write(g, [1, NaN, 2, 3]);
    expect(kernels.gradNorm(e, g, 4)).toBeNaN();
    expect(() => kernels.gradNorm(e, g, 5)).toThrowError(
      /gradNorm: grads \(n\) \(tensor grads\) must hold at least 5 values, found 4/,
    );
    expect(() => kernels.gradNorm(e, g, 2.5)).toThrowError(/gradNorm: n must be an integer >= 0, found 2.5/);
  });

  it('with scale, clips gradients to a maximum norm', () => {
    const n = 5000;
    const g0 = randomF32(n, 99);
    const maxNorm = 1;
    const out = onAllEngines(engines, 'clip', (e) => {
      const g = e.upload(g0, n, 'grads');
      const norm = kernels.gradNorm(e, g, n);
      kernels.scale(e, n, Math.min(1, maxNorm / (norm + 1e-6)), g, g);
      return [e.read(g), Float32Array.of(kernels.gradNorm(e, g, n))];
    });
    for (const simd of SIMD_LEVELS) expect(out[simd][1][0]).toBeCloseTo(maxNorm, 5);
  });
});

describe('emaUpdate', () => {
  it('matches float64 for decays 0, 0.9, 0.9999 and 1', () => {
    for (const n of [1, 17, 65, 1037]) {
      const ema0 = randomF32(n, 3);
      const p = randomF32(n, 4);
      for (const decay of [0, 0.9, 0.9999, 1]) {
        const out = onAllEngines(engines, `ema n=${n} decay=${decay}`, (e) => {
          const ema = e.upload(ema0, n, 'ema');
          kernels.emaUpdate(e, { ema, params: e.upload(p, n, 'params'), n, decay });
          return [e.read(ema)];
        });
        const want = ref.emaUpdate(ema0, p, decay);
        // ema − w·(ema − p): errors relative to |ema| + |p|
        const tol = Array.from(ema0, (v, i) => 2 ** -22 * (Math.abs(v) + Math.abs(p[i])));
        for (const simd of SIMD_LEVELS) {
          const [got] = out[simd];
          got.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThanOrEqual(tol[i]));
          if (decay === 1) expect(sameBits(got, ema0)).toBe(true);
        }
      }
    }
  });

  it('rejects a decay outside [0, 1] and overlapping tensors', () => {
    const e = engines[0].engine;
    const ema = e.upload(new Float32Array(8), 8, 'ema');
    const params = e.upload(new Float32Array(8), 8, 'params');
    expect(() => kernels.emaUpdate(e, { ema, params, n: 8, decay: 1.5 })).toThrowError(
      /emaUpdate: decay must be in \[0, 1\], found 1.5/,
    );
    expect(() => kernels.emaUpdate(e, { ema, params: ema, n: 8, decay: 0.9 })).toThrowError(
      /emaUpdate: ema \(tensor ema\) overlaps params/,
    );
  });
});
